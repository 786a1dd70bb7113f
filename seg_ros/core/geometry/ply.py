"""Labelled points to a binary little-endian PLY file, coloured by class."""

import numpy as np

from seg_ros.core.geometry.points import LabelledPoints


def ply_bytes(points: LabelledPoints, colors_rgb: np.ndarray) -> bytes:
    """
    Return a binary PLY file of the points, coloured by class.

    Properties: ``x y z`` float, ``red green blue`` uchar (the class colour), ``label`` ushort
    and, with instances, ``instance`` ushort.

    :param colors_rgb: (C, 3) uint8 class colours by class id; ids beyond it are black.
    """
    fields = [('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('red', 'u1'), ('green', 'u1'),
              ('blue', 'u1'), ('label', '<u2')]
    if points.instances is not None:
        fields.append(('instance', '<u2'))
    vertices = np.empty(len(points), fields)
    vertices['x'], vertices['y'], vertices['z'] = points.xyz.T
    palette = np.zeros((max(len(colors_rgb), int(points.labels.max(initial=0)) + 1), 3),
                       np.uint8)
    palette[:len(colors_rgb)] = colors_rgb
    colours = palette[points.labels]
    vertices['red'], vertices['green'], vertices['blue'] = colours.T
    vertices['label'] = points.labels
    if points.instances is not None:
        vertices['instance'] = points.instances
    ply_types = {'<f4': 'float', 'u1': 'uchar', '<u2': 'ushort'}
    header = ['ply', 'format binary_little_endian 1.0', 'comment seg_ros labelled points, '
              'camera optical frame (x right, y down, z forward), metres',
              f'element vertex {len(points)}']
    header += [f'property {ply_types[kind]} {name}' for name, kind in fields]
    header.append('end_header')
    return ('\n'.join(header) + '\n').encode('ascii') + vertices.tobytes()
