"""Readers and writers: images, label PNGs, COCO, COCO panoptic, YOLO, BSDS ground truth, and
segscope's own ``.npz`` results."""

from .bsds import (
    BsdsGroundTruth,
    read_boundary_png,
    read_bsds_groundtruth,
    read_ucm2,
    write_boundary_png,
    write_ucm2,
)
from .coco import (
    CocoRecord,
    mask_to_polygons,
    mask_to_rle,
    polygons_to_mask,
    read_coco,
    rle_to_mask,
    write_coco,
)
from .formats import Annotation, Format, ReadContext, get_format, list_formats, register_format
from .images import ImageInfo, image_info, imread, imwrite, read_image_or_volume
from .labels import (
    VOC_VOID,
    read_label_png,
    read_palette_png,
    voc_palette,
    write_label_png,
    write_palette_png,
)
from .limits import (
    DEFAULT_MAX_BYTES,
    ImageReadError,
    check_decoded_size,
    max_decoded_bytes,
    set_max_decoded_bytes,
)
from .npz import load_segmentation, save_segmentation
from .panoptic import PanopticRecord, ids_to_rgb, read_coco_panoptic, rgb_to_ids, write_coco_panoptic
from .volumes import Volume, file_stem, read_volume, write_volume
from .yolo import read_yolo, write_yolo

__all__ = [
    "DEFAULT_MAX_BYTES",
    "VOC_VOID",
    "Annotation",
    "BsdsGroundTruth",
    "CocoRecord",
    "Format",
    "ImageInfo",
    "ImageReadError",
    "PanopticRecord",
    "ReadContext",
    "Volume",
    "check_decoded_size",
    "file_stem",
    "get_format",
    "ids_to_rgb",
    "image_info",
    "imread",
    "imwrite",
    "list_formats",
    "load_segmentation",
    "mask_to_polygons",
    "mask_to_rle",
    "max_decoded_bytes",
    "polygons_to_mask",
    "read_boundary_png",
    "read_bsds_groundtruth",
    "read_coco",
    "read_coco_panoptic",
    "read_image_or_volume",
    "read_label_png",
    "read_palette_png",
    "read_ucm2",
    "read_volume",
    "read_yolo",
    "register_format",
    "rgb_to_ids",
    "rle_to_mask",
    "save_segmentation",
    "set_max_decoded_bytes",
    "voc_palette",
    "write_boundary_png",
    "write_coco",
    "write_coco_panoptic",
    "write_label_png",
    "write_palette_png",
    "write_ucm2",
    "write_volume",
    "write_yolo",
]
