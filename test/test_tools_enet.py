"""ENet in PyTorch, its plain-op max-unpooling and its ONNX export on three runtimes."""

import json

import cv2
import numpy as np
import pytest

# Optional tools: without them (a robot's colcon test) the module is skipped, with the reason.
TOOL = 'an optional tool (pip install -e .[tools]), not on a robot'
onnx = pytest.importorskip('onnx', reason=TOOL)
onnxruntime = pytest.importorskip('onnxruntime', reason='an optional backend')
openvino = pytest.importorskip('openvino', reason='an optional backend')
torch = pytest.importorskip('torch', reason=TOOL)
F = torch.nn.functional

from seg_ros.tools.enet import ENet  # noqa: E402
from seg_ros.tools.export import export_onnx  # noqa: E402
from seg_ros.tools.unpool import max_unpool2x2  # noqa: E402

WIDTH, HEIGHT = 256, 128
# A second size, to prove the exported H and W are really dynamic.
OTHER_WIDTH, OTHER_HEIGHT = 96, 64
FORBIDDEN_OPS = {'MaxUnpool', 'ScatterND', 'ScatterElements', 'Loop', 'If', 'DepthToSpace'}


def reference_unpool(values: torch.Tensor, pre_pool: torch.Tensor) -> torch.Tensor:
    _, indices = F.max_pool2d(pre_pool, 2, 2, return_indices=True)
    return F.max_unpool2d(values, indices, 2)


@pytest.mark.parametrize('seed', range(5))
def test_unpool_equals_max_unpool2d_on_random_tensors(seed):
    generator = torch.Generator().manual_seed(seed)
    pre_pool = torch.randn(2, 5, 12, 18, generator=generator)
    values = torch.randn(2, 5, 6, 9, generator=generator)
    assert torch.equal(max_unpool2x2(values, pre_pool), reference_unpool(values, pre_pool))


@pytest.mark.parametrize('seed', range(5))
def test_unpool_takes_the_first_maximum_on_ties(seed):
    generator = torch.Generator().manual_seed(seed)
    # 3 levels: most windows hold ties, some of them 3 or 4 equal maxima.
    pre_pool = torch.randint(0, 3, (2, 4, 10, 14), generator=generator).float()
    values = torch.randn(2, 4, 5, 7, generator=generator)
    unpooled = max_unpool2x2(values, pre_pool)
    assert torch.equal(unpooled, reference_unpool(values, pre_pool))
    # Exactly one switch per window, even in windows of 4 equal values.
    switches = F.avg_pool2d((unpooled != 0).float(), 2) * 4
    assert torch.equal(switches, torch.ones_like(switches))


def test_unpool_of_constant_windows_uses_top_left():
    values = torch.arange(1.0, 7.0).reshape(1, 1, 2, 3)
    unpooled = max_unpool2x2(values, torch.zeros(1, 1, 4, 6))
    assert torch.equal(unpooled[:, :, ::2, ::2], values)
    assert int(torch.count_nonzero(unpooled)) == values.numel()


def test_unpool_is_differentiable():
    pre_pool = torch.randn(1, 3, 8, 8)
    values = torch.randn(1, 3, 4, 4, requires_grad=True)
    max_unpool2x2(values, pre_pool).sum().backward()
    # Every pooled value lands on exactly one pixel.
    assert torch.equal(values.grad, torch.ones_like(values))


def test_enet_shape_and_size():
    model = ENet(num_classes=7).eval()
    with torch.no_grad():
        scores = model(torch.rand(2, 3, 64, 96))
    assert scores.shape == (2, 7, 64, 96)
    parameters = sum(p.numel() for p in ENet().parameters())
    assert 300_000 < parameters < 400_000


def test_enet_rejects_no_classes_and_odd_sizes():
    with pytest.raises(ValueError, match='num_classes'):
        ENet(num_classes=0)
    with pytest.raises(ValueError, match='multiples of 8'):
        ENet()(torch.rand(1, 3, 60, 96))


@pytest.fixture(scope='module')
def model() -> ENet:
    torch.manual_seed(0)
    network = ENet().eval()
    # Non-trivial batch-norm statistics, so a wrong folding would show.
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    return network


@pytest.fixture(scope='module')
def scores_path(model, tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp('enet') / 'scores.onnx')
    export_onnx(model, path, WIDTH, HEIGHT, fused=False, metadata={'seg_ros.origin': 'test'})
    return path


@pytest.fixture(scope='module')
def fused_path(model, tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp('enet') / 'fused.onnx')
    export_onnx(model, path, WIDTH, HEIGHT, fused=True)
    return path


def openvino_model(path: str):
    core = openvino.Core()
    # The CPU plugin defaults to bf16 on CPUs that have it; compare at full precision.
    core.set_property('CPU', {'INFERENCE_PRECISION_HINT': 'f32'})
    return core.compile_model(path, 'CPU')


def opencv_forward(path: str, blob: np.ndarray) -> np.ndarray:
    # A fresh Net per input size: OpenCV DNN silently misbehaves when the size changes.
    net = cv2.dnn.readNet(path)
    net.setInput(blob)
    return net.forward()


def frame(width: int, height: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def torch_scores(model: ENet, image: np.ndarray) -> np.ndarray:
    blob = cv2.dnn.blobFromImage(image, 1 / 255, swapRB=True)
    with torch.no_grad():
        return model(torch.from_numpy(blob)).numpy()


def test_exported_graphs_are_plain(scores_path, fused_path):
    for path in (scores_path, fused_path):
        graph = onnx.load(path).graph
        op_types = {node.op_type for node in graph.node}
        assert not op_types & FORBIDDEN_OPS
        # The unpoolings' pixel placement: one-hot depthwise ConvTranspose, no DepthToSpace
        # (OpenCV 4.6 cannot import it with dynamic H and W), as in the embedded model.
        assert 'DepthToSpace' not in op_types
        placements = [node for node in graph.node if node.op_type == 'ConvTranspose'
                      and any(attr.name == 'group' and attr.i > 1 for attr in node.attribute)]
        assert len(placements) == 8
        pools = [node for node in graph.node if node.op_type == 'MaxPool']
        assert pools and all(len(node.output) == 1 for node in pools)


def test_metadata(scores_path, fused_path):
    scores_props = {p.key: p.value for p in onnx.load(scores_path).metadata_props}
    description = json.loads(scores_props.pop('seg_ros.description'))
    assert scores_props == {'seg_ros.num_classes': '20', 'seg_ros.input_width': str(WIDTH),
                            'seg_ros.input_height': str(HEIGHT), 'seg_ros.format': 'scores',
                            'seg_ros.origin': 'test'}
    assert description == {'channel_order': 'RGB', 'rescale_factor': 1 / 255,
                           'image_mean': [0.0, 0.0, 0.0], 'image_std': [1.0, 1.0, 1.0],
                           'output_layout': 'NCHW', 'input_width': WIDTH, 'input_height': HEIGHT,
                           'output_name': 'scores', 'num_classes': 20}
    fused_props = {p.key: p.value for p in onnx.load(fused_path).metadata_props}
    assert fused_props['seg_ros.format'] == 'fused'
    assert json.loads(fused_props['seg_ros.description'])['output_layout'] == 'class_ids'


@pytest.mark.parametrize('width,height', [(WIDTH, HEIGHT), (OTHER_WIDTH, OTHER_HEIGHT)])
def test_scores_form_matches_pytorch(model, scores_path, width, height):
    image = frame(width, height, seed=width)
    expected = torch_scores(model, image)
    blob = cv2.dnn.blobFromImage(image, 1 / 255, swapRB=True)
    session = onnxruntime.InferenceSession(scores_path, providers=['CPUExecutionProvider'])
    outputs = {
        'onnxruntime': session.run(None, {'input': blob})[0],
        'openvino': openvino_model(scores_path)(blob)[0],
        'opencv': opencv_forward(scores_path, blob),
    }
    for runtime, scores in outputs.items():
        assert scores.shape == (1, 20, height, width), runtime
        # Rounding can flip an unpooling switch where two pre-pool values nearly tie, which
        # moves one value by a pixel: allow that on a few elements, not more.
        close = np.isclose(scores, expected, rtol=1e-4, atol=1e-4)
        assert np.mean(close) >= 0.999, runtime
        np.testing.assert_allclose(scores, expected, rtol=1e-2, atol=1e-2, err_msg=runtime)


@pytest.mark.parametrize('width,height', [(WIDTH, HEIGHT), (OTHER_WIDTH, OTHER_HEIGHT)])
def test_fused_form_matches_pytorch(model, fused_path, width, height):
    image = frame(width, height, seed=height)
    expected = torch_scores(model, image).argmax(axis=1)
    session = onnxruntime.InferenceSession(fused_path, providers=['CPUExecutionProvider'])
    outputs = {
        'onnxruntime': session.run(None, {'image': image[None]})[0],
        'openvino': openvino_model(fused_path)(image[None])[0],
    }
    for runtime, classes in outputs.items():
        assert classes.dtype == np.uint8 and classes.shape == (1, height, width), runtime
        # Identical except rare near-ties between two classes' scores.
        assert np.mean(classes == expected) >= 0.999, runtime
    # OpenCV DNN runs the fused graph too, but hands the class map back as float32.
    classes = opencv_forward(fused_path, image[None])
    assert classes.shape == (1, height, width)
    assert np.mean(classes == expected) >= 0.999


def test_fused_form_applies_swap_scale_and_mean(model, tmp_path):
    path = str(tmp_path / 'bgr.onnx')
    mean = (10.0, 20.0, 30.0)
    export_onnx(model, path, OTHER_WIDTH, OTHER_HEIGHT, fused=True, swap_rb=False,
                scale=1 / 64, mean=mean, dynamic=False)
    image = frame(OTHER_WIDTH, OTHER_HEIGHT, seed=3)
    blob = cv2.dnn.blobFromImage(image, 1 / 64, mean=mean, swapRB=False)
    with torch.no_grad():
        expected = model(torch.from_numpy(blob)).argmax(dim=1).numpy()
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    assert session.get_inputs()[0].shape == [1, OTHER_HEIGHT, OTHER_WIDTH, 3]
    classes = session.run(None, {'image': image[None]})[0]
    assert np.mean(classes == expected) >= 0.999


def test_export_rejects_wrong_class_count(model, tmp_path):
    with pytest.raises(ValueError, match='num_classes'):
        export_onnx(model, str(tmp_path / 'x.onnx'), 64, 32, fused=False, num_classes=19)
    with pytest.raises(ValueError, match='mean'):
        export_onnx(model, str(tmp_path / 'x.onnx'), 64, 32, fused=True, mean=(0, 0))
