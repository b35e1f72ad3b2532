"""The checkpoint container's vocabulary shared by the reader and the writer: storage types, allowed classes, errors."""

from utils.errors import UserError

# torch.<X>Storage -> numpy type code of one element; 'bf16' (bfloat16) has no numpy type: read as uint16 bits.
_STORAGE_CODES = {
    "HalfStorage": "f2", "FloatStorage": "f4", "DoubleStorage": "f8", "BFloat16Storage": "bf16",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1", "ByteStorage": "u1",
    "BoolStorage": "b1", "ComplexFloatStorage": "c8", "ComplexDoubleStorage": "c16", "UntypedStorage": "u1"}
# torch dtypes as they are pickled (GLOBAL 'torch float16'); used by _rebuild_tensor_v3 with an UntypedStorage.
_TORCH_DTYPES = {
    "float16": "f2", "float32": "f4", "float64": "f8", "bfloat16": "bf16", "int64": "i8", "int32": "i4",
    "int16": "i2", "int8": "i1", "uint8": "u1", "bool": "b1", "complex64": "c8", "complex128": "c16",
    "uint16": "u2", "uint32": "u4", "uint64": "u8"}
# numpy (kind + itemsize) -> the storage class a writer names; these are the dtypes write() accepts.
_WRITE_STORAGES = {code: name for name, code in _STORAGE_CODES.items()
                   if name not in ("BFloat16Storage", "UntypedStorage")}

_YOLO_MODULES = {"models.common", "models.yolo", "models.experimental"}
_YOLO_MODULES |= {"yolov5." + m for m in _YOLO_MODULES}  # the PyPI `yolov5` package pickles with this prefix
_YOLO_CLASSES = frozenset(
    "DetectionModel Model SegmentationModel ClassificationModel BaseModel Detect Segment Conv DWConv DWConvTranspose2d "
    "TransformerLayer TransformerBlock Bottleneck BottleneckCSP CrossConv C3 C3x C3TR C3SPP C3Ghost SPP SPPF Focus "
    "GhostConv GhostBottleneck Contract Expand Concat Proto Classify MixConv2d Ensemble Sum".split())
_NN_CLASSES = frozenset(
    "Sequential ModuleList ModuleDict Conv2d ConvTranspose2d BatchNorm2d SyncBatchNorm LayerNorm SiLU ReLU ReLU6 "
    "LeakyReLU Hardswish Sigmoid Tanh GELU Identity MaxPool2d AvgPool2d AdaptiveAvgPool2d Upsample ZeroPad2d Dropout "
    "Linear MultiheadAttention NonDynamicallyQuantizableLinear Flatten".split())
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"  # pickled magic number of torch < 1.6 files
_ALIGN = 64  # torch aligns storage payloads to 64 bytes in the file (needed for torch.load(mmap=True))


class CheckpointError(UserError):
    """The file is not a readable checkpoint (not a zip, truncated, records missing, corrupt pickle, ...)."""


class UnsafeCheckpointError(CheckpointError):
    """The pickle names a global outside the allow-list; it was refused before anything ran."""
