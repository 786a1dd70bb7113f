"""
Data sources that are not the node's to segment: the synthetic street scenes.

:mod:`seg_ros.data.synthetic` is the public face (``render_scene``, ``SceneAnimation``, the
held-out evaluation); ``scene_*`` modules hold its pieces. The core never imports this package.
"""
