"""Offline tools: ENet in PyTorch and its training (torch), ``seg-ros convert`` (onnx)."""
