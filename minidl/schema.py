"""What a model file's header may hold, checked before anything is built from it.

A file whose checksum matches was still written by someone: by `minidl.io.save`, or by
hand with the checksum recomputed. `check_header` holds every field of the header to
the layout `minidl.io` documents (types, allowed values, no unknown field), and
`check_layer_spec` holds the model's config to the classes it names: every key must be
an argument of the class's constructor, every required argument present, and every
value of the kind the constructor's default has (an integer where the default is an
integer, or one integer per axis as Keras' sizes allow; a number where it is a float; a
boolean, a string, a list). An argument without a default is left to the constructor,
whose errors `minidl.io` reports as the file's. Nested layer specs (Sequential's
`layers`) are checked the same way. Numbers must be finite and integers at most `integer_limit` in size, so that a
config cannot ask for a length or a width far beyond anything the file's weights make
plausible; `minidl.io` sets that limit from the number of values the file holds.

The constructor is the schema: a layer added to minidl, or an argument added to a
layer, is checked with no table to update. Errors are `ConfigError` (a ValueError)
naming the field by its path in the header, e.g. `model.config.layers[1].config.units`.
"""
import inspect
import math

import numpy as np

from minidl.nn.module import LAYERS

#: The header's fields (see minidl.io).
HEADER_FIELDS = ("format", "format_version", "minidl_version", "model", "input_shape", "input_dtype", "dtype",
                 "extra", "optimizer", "payload_bytes", "arrays")
ARRAY_FIELDS = ("group", "name", "dtype", "shape", "offset", "nbytes")
FLOAT_DTYPES = ("float16", "float32", "float64")
ARRAY_KINDS = "biuf"  # bool, signed and unsigned integers, floats: nothing that holds objects
MAX_DIMENSIONS = 32  # NumPy's own limit on an array's number of axes is 64
MAX_DEPTH = 32  # nesting of JSON values inside a config


class ConfigError(ValueError):
    """A header field or a config value that minidl cannot use; the message names it."""


# ------------------------------------------------------------------ values
def _describe(value):
    """A JSON value as a user would name it: 'a string ('garbage')', 'null'."""
    if value is None:
        return "null"
    kinds = ((bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"),
             (list, "a list"), (dict, "an object"))
    kind = next((name for python_type, name in kinds if isinstance(value, python_type)), type(value).__name__)
    text = repr(value)
    return f"{kind} ({text if len(text) <= 40 else text[:37] + '...'})"


def _fail(where, value, expected):
    raise ConfigError(f"{where} is {_describe(value)}, expected {expected}")


def is_integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_integer(value, where, low=None, expected="an integer"):
    if not is_integer(value) or (low is not None and value < low):
        _fail(where, value, expected)


def _check_keys(mapping, where, required, optional=()):
    """`mapping` is an object holding every `required` key and no key outside `optional`."""
    if not isinstance(mapping, dict):
        _fail(where, mapping, "an object")
    missing = [key for key in required if key not in mapping]
    if missing:
        raise ConfigError(f"{where} lacks {', '.join(map(repr, missing))}")
    unknown = [key for key in mapping if key not in required and key not in optional]
    if unknown:
        known = ", ".join(map(repr, (*required, *optional))) or "none"
        raise ConfigError(f"{where} has the unknown key {unknown[0]!r} (known: {known})")


# ------------------------------------------------------------------ the header
def _check_shape(shape, where):
    """An input shape: a non-empty list of positive integers or null (the batch)."""
    if not isinstance(shape, list) or not 1 <= len(shape) <= MAX_DIMENSIONS:
        _fail(where, shape, f"a list of 1 to {MAX_DIMENSIONS} sizes")
    for axis, size in enumerate(shape):
        if size is not None:
            _check_integer(size, f"{where}[{axis}]", 1, expected="a positive integer or null")


def _check_input_dtype(name, where):
    try:
        valid = isinstance(name, str) and np.dtype(name).kind in ARRAY_KINDS
    except TypeError:
        valid = False
    if not valid:
        _fail(where, name, "the name of a boolean, integer or float dtype")


def _check_array_entry(entry, where):
    _check_keys(entry, where, ARRAY_FIELDS)
    if entry["group"] not in ("state", "optimizer"):
        _fail(f"{where}.group", entry["group"], "'state' or 'optimizer'")
    if not isinstance(entry["name"], str):
        _fail(f"{where}.name", entry["name"], "a string")
    try:
        dtype = np.dtype(entry["dtype"]) if isinstance(entry["dtype"], str) else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in ARRAY_KINDS or dtype.hasobject:
        raise ConfigError(f"{where}.dtype: unsupported dtype {entry['dtype']!r} "
                          "(only boolean, integer and float arrays, such as '<f4')")
    shape = entry["shape"]
    if not isinstance(shape, list) or len(shape) > MAX_DIMENSIONS:
        _fail(f"{where}.shape", shape, f"a list of at most {MAX_DIMENSIONS} sizes")
    for axis, size in enumerate(shape):
        _check_integer(size, f"{where}.shape[{axis}]", 0, expected="a size (an integer >= 0)")
    for field in ("offset", "nbytes"):
        _check_integer(entry[field], f"{where}.{field}", 0, expected="an integer >= 0")


def check_header(header):
    """The header's fields other than `model`'s config, which `check_layer_spec` checks
    once the classes it names are known."""
    _check_keys(header, "the header", HEADER_FIELDS)
    if not isinstance(header["minidl_version"], str):
        _fail("minidl_version", header["minidl_version"], "a string")
    _check_keys(header["model"], "model", ("class_name", "config"), ("module",))
    if not isinstance(header["model"]["class_name"], str):
        _fail("model.class_name", header["model"]["class_name"], "a string")
    if not isinstance(header["model"].get("module", ""), str):
        _fail("model.module", header["model"]["module"], "a string")
    input_shape = header["input_shape"]
    if input_shape is not None:
        if isinstance(input_shape, list) and input_shape and isinstance(input_shape[0], list):
            for index, shape in enumerate(input_shape):
                _check_shape(shape, f"input_shape[{index}]")
        else:
            _check_shape(input_shape, "input_shape")
    input_dtype = header["input_dtype"]
    if isinstance(input_dtype, list):
        for index, name in enumerate(input_dtype):
            _check_input_dtype(name, f"input_dtype[{index}]")
    elif input_dtype is not None:
        _check_input_dtype(input_dtype, "input_dtype")
    if header["dtype"] not in FLOAT_DTYPES:
        _fail("dtype", header["dtype"], f"one of {', '.join(FLOAT_DTYPES)}")
    if not isinstance(header["extra"], dict):
        _fail("extra", header["extra"], "an object")
    if header["optimizer"] is not None:
        _check_keys(header["optimizer"], "optimizer", ("class_name",))
        if not isinstance(header["optimizer"]["class_name"], str):
            _fail("optimizer.class_name", header["optimizer"]["class_name"], "a string")
    _check_integer(header["payload_bytes"], "payload_bytes", 0, expected="an integer >= 0")
    if not isinstance(header["arrays"], list):
        _fail("arrays", header["arrays"], "a list")
    for index, entry in enumerate(header["arrays"]):
        _check_array_entry(entry, f"arrays[{index}]")


# ------------------------------------------------------------------ configs
def constructor_parameters(cls):
    """{name: inspect.Parameter} of the arguments `cls(...)` accepts, following a
    `**kwargs` to the constructor of the base class it is passed on to (LSTM's to
    RecurrentLayer's); None when the arguments cannot be known (a `**kwargs` that no
    base constructor names)."""
    parameters = {}
    for klass in cls.__mro__:
        if klass is object:
            return None
        if "__init__" not in vars(klass):
            continue
        own = list(inspect.signature(klass.__init__).parameters.values())[1:]  # without self
        for parameter in own:
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                parameters.setdefault(parameter.name, parameter)
        if not any(parameter.kind == parameter.VAR_KEYWORD for parameter in own):
            return parameters
    return None


def _check_json(value, where, integer_limit, depth=0):
    """Any JSON value: finite numbers, integers within the limit, bounded nesting; an
    object that names a class is a layer spec (Sequential's `layers`) and checked as one."""
    if depth > MAX_DEPTH:
        raise ConfigError(f"{where} is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, float) and not math.isfinite(value):
        _fail(where, value, "a finite number")
    if is_integer(value) and abs(value) > integer_limit:
        _fail(where, value, f"an integer of at most {integer_limit:,} in size")
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]", integer_limit, depth + 1)
    elif isinstance(value, dict) and "class_name" in value:
        check_layer_spec(value, where, integer_limit, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_json(item, f"{where}.{key}", integer_limit, depth + 1)


def _check_argument(value, default, where, integer_limit, depth):
    """`value` is of the kind of the constructor's `default` (any JSON when the default
    is None or there is none; a layer's name is a string or null)."""
    if where.endswith(".name") and value is not None and not isinstance(value, str):
        _fail(where, value, "a string or null")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            _fail(where, value, "true or false")
    elif is_integer(default):
        # Keras' sizes (pool_size, strides, kernel_size): an integer, or one per axis.
        if not (is_integer(value) or (isinstance(value, list) and value and all(map(is_integer, value)))):
            _fail(where, value, "an integer (or a list of integers, one per axis)")
    elif isinstance(default, float):
        if not (is_integer(value) or isinstance(value, float)):
            _fail(where, value, "a number")
    elif isinstance(default, str):
        if not isinstance(value, str):
            _fail(where, value, "a string")
    elif isinstance(default, (tuple, list)):
        if not isinstance(value, list):
            _fail(where, value, "a list")
        if default and is_integer(default[0]):
            for index, item in enumerate(value):
                _check_integer(item, f"{where}[{index}]")
    _check_json(value, where, integer_limit, depth)


def check_arguments(cls, config, where, integer_limit, depth=0):
    """`config` holds arguments of `cls(**config)`: known keys, every required one,
    values of the kinds the constructor's defaults have."""
    if not isinstance(config, dict):
        _fail(where, config, "an object")
    parameters = constructor_parameters(cls)
    if parameters is None:  # the constructor takes any keyword: only the values can be checked
        _check_json(config, where, integer_limit, depth)
        return
    unknown = [key for key in config if key not in parameters]
    if unknown:
        raise ConfigError(f"{where}: {cls.__name__} has no argument {unknown[0]!r} "
                          f"(its arguments: {', '.join(parameters)})")
    empty = inspect.Parameter.empty
    missing = [name for name, parameter in parameters.items() if parameter.default is empty and name not in config]
    if missing:
        raise ConfigError(f"{where}: {cls.__name__} needs {', '.join(map(repr, missing))}, which the config lacks")
    for key, value in config.items():
        default = parameters[key].default
        _check_argument(value, None if default is empty else default, f"{where}.{key}", integer_limit, depth + 1)


def check_layer_spec(spec, where, integer_limit, depth=0):
    """{"class_name", "config"} naming a registered layer (minidl.nn.LAYERS) whose
    constructor accepts the config."""
    _check_keys(spec, where, ("class_name", "config"), ("module",) if where == "model" else ())
    class_name = spec["class_name"]
    if not isinstance(class_name, str):
        _fail(f"{where}.class_name", class_name, "a string")
    if class_name not in LAYERS:
        raise ConfigError(f"{where}.class_name: unknown layer class {class_name!r}")
    check_arguments(LAYERS[class_name], spec["config"], f"{where}.config", integer_limit, depth + 1)


def construct(cls, config, where, integer_limit=2**24):
    """`cls.from_config(config)` after `check_arguments`; any failure of the constructor
    itself is a ConfigError naming `where` (for settings read from a file, such as the
    tokeniser's in a model file's `extra`)."""
    check_arguments(cls, config, where, integer_limit)
    try:
        return cls.from_config(dict(config))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from None
