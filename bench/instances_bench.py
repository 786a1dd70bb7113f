"""
Cost of instance decoding and drawing at 1280x720 with 20 objects, against the frame time.

Three cases, each with 20 objects in a 1280x720 frame and the network outputs made up in
NumPy (the decoding cost does not depend on the weights):

* ``yolo_seg``: a 640x640 YOLO-seg output (8400 anchors, 80 classes, 32 prototypes at 160x160)
  with 20 objects, 40 duplicates that NMS suppresses and 600 low-score candidates below the
  threshold; ``yolo_seg 640x352``: the same at a 640x352 input (4620 anchors, 88x160
  prototypes), whose letterbox padding of 1280x720 frames (7 pixels a side) is not whole
  prototype cells, so the logits are enlarged 4 times before the resize to the frame;
* ``maskrcnn``: a torchvision Mask R-CNN output at 640x640 input (20 detections with their
  (20, 1, 640, 640) mask probabilities);
* ``components``: 20 cars in a 1280x720 class map, connected components of ``Car`` and
  ``Person``.

Per case: decoding (outputs -> Instances at frame size), the instance map, drawing (fill,
outline, label) on the overlay; medians of ``--rounds`` runs. The frame time it is compared with
is ``Segmenter.run`` of the embedded ENet on a 1280x720 frame (every output), measured here in
the same run.

Usage::

    .venv/bin/python bench/instances_bench.py [--rounds 30]
"""

import cv2
import numpy as np
from timing import frame_time_setup, median_ms

from seg_ros.core.decode.instance_decoders import (decode_mask_rcnn, decode_yolo_seg,
                                                   instances_from_class_map, InstanceSettings,
                                                   Letterbox, mask_rcnn_outputs, yolo_seg_layout)
from seg_ros.core.render.instances import draw_instances
from seg_ros.data import synthetic

WIDTH, HEIGHT, OBJECTS = 1280, 720, 20
CAR = int(synthetic.CityscapesClass.CAR)
PERSON = int(synthetic.CityscapesClass.PERSON)


def object_boxes(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Return OBJECTS boxes, one in each cell of a 5 x 4 grid over the area, 50-100 % of it."""
    cell_w, cell_h = width / 5, height / 4
    cells = np.stack(np.meshgrid(np.arange(5), np.arange(4)), axis=-1).reshape(-1, 2)
    sizes = rng.uniform(0.5, 1.0, (OBJECTS, 2)) * [cell_w, cell_h]
    slack = np.array([cell_w, cell_h]) - sizes
    corners = cells * [cell_w, cell_h] + rng.uniform(0, 1, (OBJECTS, 2)) * slack
    return np.concatenate([corners, corners + sizes], axis=1).astype(np.float32)


def ellipse(shape: tuple[int, int], box: np.ndarray) -> np.ndarray:
    """Return a float32 map, 1 inside the ellipse inscribed in ``box``, blurred edges."""
    image = np.zeros(shape, np.float32)
    centre = (int((box[0] + box[2]) / 2), int((box[1] + box[3]) / 2))
    axes = (int((box[2] - box[0]) / 2), int((box[3] - box[1]) / 2))
    cv2.ellipse(image, centre, axes, 0, 0, 360, 1.0, cv2.FILLED)
    return cv2.GaussianBlur(image, (0, 0), 2.0)


def yolo_case(rng: np.random.Generator, input_width: int = 640, input_height: int = 640) -> tuple:
    anchors = sum((input_width // stride) * (input_height // stride) for stride in (8, 16, 32))
    classes = 80
    letterbox = Letterbox.fit(WIDTH, HEIGHT, input_width, input_height)
    boxes = object_boxes(rng, letterbox.resized_width, letterbox.resized_height)
    boxes[:, 0::2] += letterbox.left
    boxes[:, 1::2] += letterbox.top
    detections = np.zeros((1, 4 + classes + 32, anchors), np.float32)
    detections[0, 4:4 + classes] = rng.uniform(0, 0.05, (classes, anchors))
    grid = (input_height // 4, input_width // 4)
    prototypes = rng.normal(0, 0.3, (1, 32) + grid).astype(np.float32)
    anchor = 0
    for index, box in enumerate(boxes):
        # The object, and two duplicates NMS suppresses.
        for copy, score in enumerate((0.9, 0.7, 0.6)):
            shift = copy * 3.0
            detections[0, :4, anchor] = ((box[0] + box[2]) / 2 + shift, (box[1] + box[3]) / 2,
                                         box[2] - box[0], box[3] - box[1])
            detections[0, 4 + index % classes, anchor] = score
            detections[0, 4 + classes + index % 32, anchor] = 6.0
            anchor += 1
        prototypes[0, index % 32] += 2 * ellipse(grid, box / 4) - 1
    low = rng.choice(np.arange(anchor, anchors), 600, replace=False)
    detections[0, 4, low] = rng.uniform(0.1, 0.45, 600)
    detections[0][:4, low] = rng.uniform(50, min(input_width, input_height) - 40, (4, 600))
    outputs = {'output0': detections, 'output1': prototypes}
    layout = yolo_seg_layout({k: v.shape for k, v in outputs.items()}, input_width,
                             input_height)
    return lambda settings: decode_yolo_seg(outputs, layout, letterbox, settings)


def mask_rcnn_case(rng: np.random.Generator) -> tuple:
    size = 640
    letterbox = Letterbox.fit(WIDTH, HEIGHT, size, size)
    boxes = object_boxes(rng, size, letterbox.resized_height)
    boxes[:, 1::2] += letterbox.top
    masks = np.stack([ellipse((size, size), box) for box in boxes])[:, None]
    outputs = {'boxes': boxes, 'labels': rng.integers(1, 91, OBJECTS),
               'scores': rng.uniform(0.55, 0.99, OBJECTS).astype(np.float32), 'masks': masks}
    names = mask_rcnn_outputs({k: v.shape for k, v in outputs.items()}, size, size)
    return lambda settings: decode_mask_rcnn(outputs, names, letterbox, settings)


def components_case(rng: np.random.Generator) -> tuple:
    _, class_map = synthetic.render_scene(np.random.default_rng(0), WIDTH, HEIGHT,
                                          photometric=False)
    class_map[class_map == CAR] = int(synthetic.CityscapesClass.ROAD)
    for box in object_boxes(rng, WIDTH, HEIGHT):
        class_map[ellipse((HEIGHT, WIDTH), box) > 0.5] = CAR
    return lambda settings: instances_from_class_map(class_map, settings)


def main() -> None:
    args, segmenter, frame_ms, result = frame_time_setup(__doc__.split('\n\n')[0], WIDTH,
                                                         HEIGHT)
    rng = np.random.default_rng(1)
    print(f'frame: embedded ENet Segmenter.run at {WIDTH}x{HEIGHT} ({segmenter.backend.describe()}'
          f'): {frame_ms:.1f} ms median of {args.rounds}')
    names = [f'class{index}' for index in range(91)]
    print('\n| case | instances | decode ms | instance map ms | draw ms | total ms | '
          '% of frame |\n|---|---:|---:|---:|---:|---:|---:|')
    cases = {'yolo_seg': (yolo_case(rng), InstanceSettings()),
             # 1280x720 in 640x352: 14 pixels of padding, logits enlarged 4 times first.
             'yolo_seg 640x352': (yolo_case(rng, 640, 352), InstanceSettings()),
             'maskrcnn': (mask_rcnn_case(rng), InstanceSettings()),
             'components': (components_case(rng),
                            InstanceSettings(class_ids=(CAR, PERSON), min_instance_area=100))}
    for name, (decode, settings) in cases.items():
        decode_ms, instances = median_ms(lambda: decode(settings), args.rounds)
        map_ms, instance_map = median_ms(instances.instance_map, args.rounds)
        draw_ms, _ = median_ms(lambda: draw_instances(result.overlay.copy(), instances,
                                                      instance_map, names, encoding='bgr8'),
                               args.rounds)
        copy_ms, _ = median_ms(result.overlay.copy, args.rounds)
        draw_ms -= copy_ms
        total = decode_ms + map_ms + draw_ms
        print(f'| {name} | {len(instances)} | {decode_ms:.2f} | {map_ms:.2f} | {draw_ms:.2f} | '
              f'{total:.2f} | {100 * total / frame_ms:.1f} % |')


if __name__ == '__main__':
    main()
