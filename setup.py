"""ament_python build of seg_ros (also installable with pip into a virtual environment)."""

from glob import glob
import os

from setuptools import find_packages, setup

PACKAGE_NAME = 'seg_ros'


def share_tree(folder):
    """Map every file under ``folder`` to ``share/seg_ros/<folder>/...`` for ``data_files``."""
    entries = {}
    for path in glob(os.path.join(folder, '**', '*'), recursive=True):
        if os.path.isfile(path) and '__pycache__' not in path:
            target = os.path.join('share', PACKAGE_NAME, os.path.dirname(path))
            entries.setdefault(target, []).append(path)
    return sorted(entries.items())


setup(
    name=PACKAGE_NAME,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*', 'bench', 'bench.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE_NAME]),
        ('share/' + PACKAGE_NAME, ['package.xml']),
        *share_tree('launch'),
        *share_tree('config'),
        *share_tree('rviz'),
        *share_tree('models'),
    ],
    python_requires='>=3.10',
    install_requires=['setuptools', 'numpy', 'opencv-python<5'],
    extras_require={
        # The optional inference runtimes; the node runs without them. onnx converts a Torch7
        # .net to the ONNX form they run (seg_ros.core.model.torch7_onnx).
        'onnxruntime': ['onnxruntime', 'onnx'],
        'openvino': ['openvino', 'onnx'],
        # HuggingFace-described models (a preprocessor_config.json): resized as HF does, by PIL.
        'hf': ['Pillow'],
        # Offline tools: training the embedded model (torch); torchfile reads Torch7 files for the
        # tests' independent reference of the converter (seg-ros convert itself needs only onnx).
        'tools': ['torch==2.13.0', 'onnx', 'torchfile'],
        # seg-ros bag: reading and writing rosbag2 bags without ROS.
        'bag': ['rosbags>=0.10'],
        # seg-ros fleet: many bags on Ray (this machine's cores, or a cluster); tested with 2.60.
        'fleet': ['rosbags>=0.10', 'ray'],
        # torchvision pinned to torch 2.13's release (a newer one replaces torch); with
        # transformers and onnxscript (torch's dynamo exporter) they build the model-family
        # test exports: nothing is downloaded, weights are random.
        'test': ['pytest', 'hypothesis', 'flake8', 'flake8-quotes', 'flake8-import-order',
                 'flake8-builtins', 'flake8-comprehensions', 'flake8-docstrings', 'pep257',
                 'pydocstyle', 'onnx', 'xmlschema', 'torchvision==0.28.0', 'transformers',
                 'onnxscript', 'pyyaml', 'rosbags>=0.10', 'Pillow',
                 # The reference of seg_ros.core.track (NumPy >= 2, SciPy; never the runtime).
                 'trackers==2.6.0',
                 # seg-ros fleet's tests run a local Ray.
                 'ray'],
    },
    zip_safe=True,
    maintainer='seg_ros developers',
    maintainer_email='seg-ros@example.com',
    description='Semantic segmentation node for ROS 2 camera streams (ENet, FCN, DeepLab).',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'segmentation_node = seg_ros.ros.segmentation_node:main',
            'multi_camera_segmentation = seg_ros.ros.multi_camera:main',
            'managed_segmentation_node = seg_ros.ros.managed_node:main',
            'camera_source = seg_ros.ros.camera_source:main',
            'seg-ros = seg_ros.cli:main',
        ],
    },
)
