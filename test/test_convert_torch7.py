"""
``seg-ros convert`` (the torch-free Torch7 -> ONNX converter) against an independent reference.

``torch7_reference`` interprets a Torch7 file into PyTorch modules, written apart from
:mod:`seg_ros.core.model.torch7_onnx`; its module semantics are checked here against
``torch.nn.functional``, then the converter's ONNX scores against the reference's on a small
random network (in the Torch7 format of ``torch7_writer``) and on the real ENet, and the real
ENet's conversions against OpenCV DNN on the two street photos.
"""

import os

import cv2
import numpy as np
import pytest

# Optional tools: without them (a robot's colcon test) the module is skipped, with the reason.
TOOL = 'an optional tool (pip install -e .[tools]), not on a robot'
onnx = pytest.importorskip('onnx', reason=TOOL)
onnxruntime = pytest.importorskip('onnxruntime', reason='an optional backend')
openvino = pytest.importorskip('openvino', reason='an optional backend')
torch = pytest.importorskip('torch', reason=TOOL)
torchfile = pytest.importorskip('torchfile', reason=TOOL)
F = torch.nn.functional

from torch7_reference import load_torch7, Torch7Builder  # noqa: E402
from torch7_writer import save_torch7, small_enet  # noqa: E402

from seg_ros.core.model.torch7_onnx import save_model, torch7_to_onnx  # noqa: E402
from seg_ros.tools.convert import convert_torch7, main  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(REPO_ROOT, '..', 'shared')
ENET_NET = os.path.join(SHARED, 'models', 'enet-cityscapes', 'enet-model.net')
PHOTOS = [os.path.join(SHARED, 'images', name) for name in ('leuvenA.jpg', 'leuvenB.jpg')]
WIDTH, HEIGHT = 1024, 512
MIN_AGREEMENT = 0.999
FORBIDDEN_OPS = {'MaxUnpool', 'ScatterND', 'ScatterElements'}


def t7(typename: str, **fields) -> torchfile.TorchObject:
    """Build a Torch7 module as torchfile reads it: bytes type name and bytes field keys."""
    return torchfile.TorchObject(typename.encode(), {k.encode(): v for k, v in fields.items()})


def build(module: torchfile.TorchObject) -> torch.nn.Module:
    return Torch7Builder().build(module).eval()


def test_padding_before_and_after_channels():
    x = torch.rand(1, 2, 4, 4)
    after = build(t7('nn.Padding', dim=1, pad=3, nInputDim=3, value=0, index=1))(x)
    assert after.shape == (1, 5, 4, 4)
    assert torch.equal(after[:, :2], x) and not after[:, 2:].any()
    before = build(t7('nn.Padding', dim=1, pad=-1, nInputDim=3, value=2.5, index=1))(x)
    assert torch.equal(before[:, 1:], x) and bool((before[:, 0] == 2.5).all())


def test_padding_on_spatial_dimension_is_refused():
    with pytest.raises(ValueError, match='channel'):
        build(t7('nn.Padding', dim=2, pad=1, nInputDim=3, value=0, index=1))


def test_dropout_scales_at_inference_unless_v2():
    x = torch.rand(1, 3, 2, 2)
    assert torch.allclose(build(t7('nn.SpatialDropout', p=0.1))(x), x * 0.9)
    assert torch.equal(build(t7('nn.SpatialDropout', p=0.1, v2=True))(x), x)


def test_join_table_dimension_follows_batch():
    x = torch.rand(1, 3, 2, 2)
    table = t7('nn.Sequential', modules=[
        t7('nn.ConcatTable', modules=[t7('nn.Identity'), t7('nn.Identity')]),
        t7('nn.JoinTable', dimension=1, nInputDims=3)])
    assert build(table)(x).shape == (1, 6, 2, 2)
    table._obj[b'modules'][1] = t7('nn.JoinTable', dimension=2)
    assert build(table)(x).shape == (1, 6, 2, 2)


def test_unpooling_uses_its_pooling_switches():
    pool = t7('nn.SpatialMaxPooling', kW=2, kH=2, dW=2, dH=2, padW=0, padH=0, ceil_mode=False)
    network = t7('nn.Sequential', modules=[
        pool, t7('nn.SpatialMaxUnpooling', pooling=pool, owidth=8, oheight=6)])
    x = torch.rand(1, 4, 6, 8)
    pooled, indices = F.max_pool2d(x, 2, 2, return_indices=True)
    assert torch.equal(build(network)(x), F.max_unpool2d(pooled, indices, 2))


def test_layers_keep_torch7_parameters():
    rng = np.random.default_rng(0)
    conv = t7('cudnn.SpatialConvolution', nInputPlane=3, nOutputPlane=4, kW=3, kH=1, dW=1,
              dH=1, padW=1, padH=0, groups=1,
              weight=rng.standard_normal((4, 9)).astype(np.float32))
    norm = t7('nn.SpatialBatchNormalization', eps=1e-3, affine=True,
              running_mean=rng.standard_normal(4).astype(np.float32),
              running_var=rng.uniform(0.5, 2, 4).astype(np.float32),
              weight=rng.standard_normal(4).astype(np.float32),
              bias=rng.standard_normal(4).astype(np.float32))
    full = t7('nn.SpatialFullConvolution', nInputPlane=4, nOutputPlane=2, kW=3, kH=3, dW=2,
              dH=2, padW=1, padH=1, adjW=1, adjH=1,
              weight=rng.standard_normal((4, 2, 3, 3)).astype(np.float32),
              bias=rng.standard_normal(2).astype(np.float32))
    x = torch.rand(1, 3, 5, 6)
    y = build(t7('nn.Sequential', modules=[conv, norm, full]))(x)
    weight = torch.from_numpy(conv.weight.reshape(4, 3, 1, 3))
    expected = F.conv2d(x, weight, padding=(0, 1))
    expected = F.batch_norm(expected, torch.from_numpy(norm.running_mean),
                            torch.from_numpy(norm.running_var), torch.from_numpy(norm.weight),
                            torch.from_numpy(norm.bias), eps=1e-3)
    expected = F.conv_transpose2d(expected, torch.from_numpy(full.weight),
                                  torch.from_numpy(full.bias), stride=2, padding=1,
                                  output_padding=1)
    assert y.shape == (1, 2, 10, 12)
    assert torch.allclose(y, expected, atol=1e-5)


def test_unknown_module_is_refused():
    with pytest.raises(ValueError, match='nn.SpatialLPPooling'):
        build(t7('nn.SpatialLPPooling'))


def test_command_line_reports_missing_file(tmp_path, capsys):
    assert main([str(tmp_path / 'missing.net'), '-o', str(tmp_path / 'out.onnx')]) == 1
    assert 'missing.net' in capsys.readouterr().err


def reference_scores(network: torch.nn.Module, blob: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return network(torch.from_numpy(blob)).numpy()


@pytest.mark.parametrize('seed', [0, 1])
def test_converter_scores_match_the_torch_reference(tmp_path, seed):
    net_path = str(tmp_path / 'small.net')
    save_torch7(net_path, small_enet(seed=seed))
    onnx_path = str(tmp_path / 'scores.onnx')
    save_model(torch7_to_onnx(net_path, fused=False), onnx_path)
    network, layers = load_torch7(net_path)
    assert layers['nn.SpatialMaxUnpooling'] >= 1
    session = onnxruntime.InferenceSession(onnx_path, providers=['CPUExecutionProvider'])
    blob = np.random.default_rng(seed).random((1, 3, 64, 96), dtype=np.float32)
    expected = reference_scores(network, blob)
    scores = session.run(None, {'input': blob})[0]
    assert scores.shape == expected.shape
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_command_line_writes_the_description_a_node_reads(tmp_path, capsys):
    from seg_ros.core.backends import open_backend, Preprocess

    net_path = str(tmp_path / 'small.net')
    save_torch7(net_path, small_enet(seed=2))
    fused_path, scores_path = str(tmp_path / 'fused.onnx'), str(tmp_path / 'scores.onnx')
    assert main([net_path, '-o', fused_path, '--width', '96', '--height', '64']) == 0
    out = capsys.readouterr().out
    assert f'wrote {fused_path}: fused form, 5 classes' in out
    assert 'nn.SpatialMaxUnpooling x' in out and 'ArgMax x1' in out
    assert main([net_path, '-o', scores_path, '--scores-only', '--bgr', '--scale', '1/127.5',
                 '--mean', '10,20,30', '--width', '96', '--height', '64']) == 0
    # Opened with no settings, each file runs as its metadata describes it.
    image = (np.random.default_rng(4).random((64, 96, 3)) * 255).astype(np.uint8)
    network, _ = load_torch7(net_path)
    for path, swap_rb, scale, mean in ((fused_path, True, 1 / 255, (0, 0, 0)),
                                       (scores_path, False, 1 / 127.5, (10, 20, 30))):
        opened = open_backend(path, Preprocess(0, 0), backend='onnxruntime', target='cpu')
        blob = cv2.dnn.blobFromImage(image, scale, (96, 64), mean, swapRB=swap_rb, crop=False)
        expected = reference_scores(network, blob)[0].argmax(axis=0)
        assert np.mean(opened.infer(image, 'bgr8') == expected) >= 0.999, path


requires_enet = pytest.mark.skipif(
    not os.path.isfile(ENET_NET),
    reason='ENet Cityscapes weights (non-commercial) not found at ../shared/models/'
           'enet-cityscapes/enet-model.net; they are never stored in the repository')


@pytest.fixture(scope='module')
def converted(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp('enet_torch7')
    fused = convert_torch7(ENET_NET, str(folder / 'fused.onnx'), WIDTH, HEIGHT, fused=True)
    scores_path = str(folder / 'scores.onnx')
    assert main([ENET_NET, '-o', scores_path, '--scores-only']) == 0
    return {'fused': fused, 'scores_path': scores_path}


@pytest.fixture(scope='module')
def enet_reference():
    network, _ = load_torch7(ENET_NET)
    return network


@pytest.fixture(scope='module')
def photos() -> list[dict]:
    """Each photo: the uint8 1024x512 frame, its blob and OpenCV's class map from the .net."""
    cases = []
    for path in PHOTOS:
        image = cv2.imread(path)
        assert image is not None, path
        blob = cv2.dnn.blobFromImage(image, 1 / 255, (WIDTH, HEIGHT), swapRB=True)
        net = cv2.dnn.readNet(ENET_NET)
        net.setInput(blob)
        cases.append({'name': os.path.basename(path), 'blob': blob,
                      'frame': cv2.resize(image, (WIDTH, HEIGHT)),
                      'classes': net.forward().argmax(axis=1)})
    return cases


def openvino_f32() -> openvino.Core:
    core = openvino.Core()
    # The CPU plugin defaults to bf16 where the CPU has it, which changes ~1% of the pixels.
    core.set_property('CPU', {'INFERENCE_PRECISION_HINT': 'f32'})
    return core


def agreement(classes: np.ndarray, expected: np.ndarray) -> float:
    assert classes.shape == expected.shape
    return float(np.mean(classes == expected))


@requires_enet
def test_summary_lists_the_real_network(converted):
    summary = converted['fused']
    assert summary['num_classes'] == 20 and summary['format'] == 'fused'
    assert summary['layers']['nn.SpatialMaxUnpooling'] == 2
    assert summary['layers']['nn.SpatialDropout'] == 22
    assert 300_000 < summary['values'] < 400_000
    assert not set(summary['ops']) & FORBIDDEN_OPS
    graph = onnx.load(summary['path']).graph
    assert all(len(node.output) == 1 for node in graph.node if node.op_type == 'MaxPool')
    props = {p.key: p.value for p in onnx.load(converted['scores_path']).metadata_props}
    assert props['seg_ros.format'] == 'scores' and props['seg_ros.num_classes'] == '20'
    assert props['seg_ros.input_width'] == str(WIDTH)


@requires_enet
def test_fused_model_matches_opencv_torch7(converted, photos):
    path = converted['fused']['path']
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    compiled = openvino_f32().compile_model(path, 'CPU')
    for photo in photos:
        frame = photo['frame'][None]
        for runtime, classes in (('onnxruntime', session.run(None, {'image': frame})[0]),
                                 ('openvino', compiled(frame)[0])):
            assert classes.dtype == np.uint8
            assert agreement(classes, photo['classes']) >= MIN_AGREEMENT, (runtime, photo['name'])


@requires_enet
def test_scores_model_matches_opencv_torch7(converted, photos):
    from seg_ros.core.backends import open_backend, Preprocess

    path = converted['scores_path']
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    compiled = openvino_f32().compile_model(path, 'CPU')
    # OpenCV DNN reads the file as seg_ros's backend does: H and W fixed to the input's.
    opencv = open_backend(path, Preprocess(WIDTH, HEIGHT), backend='opencv', target='cpu')
    for photo in photos:
        blob = photo['blob']
        outputs = {'onnxruntime': session.run(None, {'input': blob})[0],
                   'openvino': compiled(blob)[0],
                   'opencv': opencv.forward(blob)[opencv.output_names[0]]}
        for runtime, scores in outputs.items():
            assert scores.shape == (1, 20, HEIGHT, WIDTH)
            classes = scores.argmax(axis=1)
            assert agreement(classes, photo['classes']) >= MIN_AGREEMENT, (runtime, photo['name'])


@requires_enet
def test_real_enet_scores_match_the_torch_reference(converted, photos, enet_reference):
    session = onnxruntime.InferenceSession(converted['scores_path'],
                                           providers=['CPUExecutionProvider'])
    for photo in photos:
        scores = session.run(None, {'input': photo['blob']})[0]
        expected = reference_scores(enet_reference, photo['blob'])
        # A pooling window with two equal maxima (a few in a frame) unpools to each of them in
        # the converter, to the first in PyTorch: a handful of scores differ slightly.
        close = np.isclose(scores, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())
        assert close.mean() >= 0.999, photo['name']
        assert agreement(scores.argmax(axis=1), expected.argmax(axis=1)) >= 0.9999
        assert agreement(expected.argmax(axis=1), photo['classes']) >= MIN_AGREEMENT


@requires_enet
def test_command_line_check_prints_the_agreement_on_each_photo(tmp_path, capsys):
    missing = str(tmp_path / 'missing.jpg')
    status = main([ENET_NET, '-o', str(tmp_path / 'enet.onnx'), '--check', *PHOTOS, missing])
    captured = capsys.readouterr()
    assert status == 1, 'an unreadable image makes the check fail'
    assert f'cannot read image {missing!r}' in captured.err
    for photo in PHOTOS:
        line = next(line for line in captured.out.splitlines() if line.startswith(photo + ':'))
        percent = float(line.split(': ')[1].split(' %')[0])
        assert percent >= 100 * MIN_AGREEMENT and line.endswith(' ok'), line
