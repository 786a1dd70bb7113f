"""Offline tools (training, conversion); they need torch, the node never imports them."""
