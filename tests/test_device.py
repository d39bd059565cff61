"""The device layer on a machine without a GPU: device selection and its errors, which
kernel target each op's arrays dispatch to, that GPU code is never imported without
CuPy, that devices never mix silently, state that crosses devices, and the GPU check
script's dry run.

Where a test needs arrays that minidl takes for CuPy arrays, `fake_cupy` installs a
stand-in `cupy` module whose `ndarray` is a NumPy subclass. The real dispatcher, the
real minidl.kernels.numba_cuda modules and the real device checks run against it.
With the CUDA simulator on (tests/conftest.py) a numba_cuda kernel refuses the fake's
arrays at its launch, naming itself, which shows the op reached it; no arithmetic is
ever done in the fake's name (tests/test_gpu.py does that on a GPU, and
tests/test_cuda_kernels.py runs the kernels on NumPy arrays in the simulator).
"""
import contextlib
import importlib
import inspect
import json
import os
import pkgutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import minidl
from minidl import backend, kernels, nn
from minidl import functional as F
from minidl.autograd import Tensor

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------ a fake CuPy
class FakeDeviceArray(np.ndarray):
    """Host memory that minidl takes for a CuPy array (it is the fake module's ndarray)."""

    def get(self):
        return self.view(np.ndarray).copy()


def fake_cupy_module(device_count=1):
    """A `cupy` with one GPU (or `device_count` GPUs, or a driver error to raise)."""
    module = types.ModuleType("cupy")
    module.ndarray = FakeDeviceArray
    module.asarray = lambda array, dtype=None: np.array(array, dtype=dtype).view(FakeDeviceArray)
    # What a numba_cuda kernel's wrapper asks of its array module before the launch.
    module.empty = lambda shape, dtype=float: np.empty(shape, dtype=dtype).view(FakeDeviceArray)
    module.ascontiguousarray = lambda array, dtype=None: np.ascontiguousarray(array, dtype=dtype).view(FakeDeviceArray)
    module.bool_ = np.bool_
    module.cublas = types.ModuleType("cupy.cublas")

    def get_device_count():
        if isinstance(device_count, Exception):
            raise device_count
        return device_count

    module.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=get_device_count))
    return module


@contextlib.contextmanager
def fresh_cuda_kernel_modules():
    """Import minidl.kernels.numba_cuda.* afresh inside the block and put the previous
    ones back after, so a module built against a fake CuPy never outlives its test (on a
    GPU machine the real ones may already be loaded)."""
    package = importlib.import_module("minidl.kernels.numba_cuda")
    prefix = package.__name__ + "."
    saved = {name: module for name, module in sys.modules.items() if name.startswith(prefix)}

    def drop_all():
        for name in [name for name in sys.modules if name.startswith(prefix)]:
            del sys.modules[name]
            package.__dict__.pop(name[len(prefix):], None)

    drop_all()
    try:
        yield
    finally:
        drop_all()
        sys.modules.update(saved)
        for name, module in saved.items():
            setattr(package, name[len(prefix):], module)


def _isolate_device_state(monkeypatch):
    monkeypatch.setattr(kernels, "_cache", {})
    monkeypatch.setitem(backend._state, "generators", {})
    monkeypatch.setitem(backend._state, "device", backend._state["device"])


@pytest.fixture
def fake_cupy(monkeypatch):
    module = fake_cupy_module()
    monkeypatch.setitem(sys.modules, "cupy", module)
    _isolate_device_state(monkeypatch)
    with fresh_cuda_kernel_modules():
        yield module


@pytest.fixture
def no_cupy(monkeypatch):
    """CuPy missing: `import cupy` raises ImportError, as on a machine without it."""
    monkeypatch.setitem(sys.modules, "cupy", None)
    _isolate_device_state(monkeypatch)
    with fresh_cuda_kernel_modules():
        yield


@pytest.fixture
def unset_device(monkeypatch):
    """The device as at start-up: read from MINIDL_DEVICE on first use."""
    monkeypatch.setitem(backend._state, "device", None)
    monkeypatch.delenv("MINIDL_DEVICE", raising=False)


def on_fake_gpu(values):
    return np.asarray(values, dtype=np.float32).view(FakeDeviceArray)


# ---------------------------------------------------------------- device selection
def test_the_default_device_is_the_cpu(unset_device):
    assert minidl.current_device() == "cpu"
    assert type(minidl.tensor([1.0, 2.0]).data) is np.ndarray


def test_minidl_device_cpu_is_read_once(unset_device, monkeypatch):
    monkeypatch.setenv("MINIDL_DEVICE", "CPU")
    assert minidl.current_device() == "cpu"
    monkeypatch.setenv("MINIDL_DEVICE", "cuda")  # read at first use only
    assert minidl.current_device() == "cpu"


def test_device_context_makes_parameters_on_the_cpu_and_restores():
    with minidl.device("cpu") as name:
        assert name == "cpu" and minidl.current_device() == "cpu"
        layer = nn.Dense(3)
        layer.build((None, 2))
    assert type(layer.kernel.data) is np.ndarray
    assert minidl.current_device() == "cpu"


@pytest.mark.parametrize("name", ["tpu", "gpu", "cuda:0", ""])
def test_an_unknown_device_name_is_a_value_error(name, unset_device, monkeypatch):
    message = f"unknown device {name!r}: choose one of cpu, cuda"
    with pytest.raises(ValueError, match=message):
        with minidl.device(name):
            pass
    with pytest.raises(ValueError, match=message):
        minidl.tensor([1.0]).to(name)
    monkeypatch.setitem(backend._state, "device", None)  # the tensor above resolved it
    monkeypatch.setenv("MINIDL_DEVICE", name)
    with pytest.raises(ValueError, match=message):
        minidl.current_device()


def test_cuda_without_cupy_is_a_clear_runtime_error(no_cupy, unset_device, monkeypatch):
    with pytest.raises(RuntimeError, match=r'the CUDA device needs CuPy: install it with `pip install -e "\.\[gpu\]"`'):
        with minidl.device("cuda"):
            pass
    assert minidl.current_device() == "cpu"  # the failed request changed nothing
    with pytest.raises(RuntimeError, match="needs CuPy"):
        minidl.tensor([1.0]).to("cuda")
    layer = nn.Dense(2)
    layer.build((None, 3))
    with pytest.raises(RuntimeError, match="needs CuPy"):
        layer.to("cuda")
    monkeypatch.setitem(backend._state, "device", None)
    monkeypatch.setenv("MINIDL_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="needs CuPy"):
        minidl.current_device()


@pytest.mark.parametrize("device_count, message", [
    (0, "CuPy is installed but this machine has no CUDA GPU"),
    (RuntimeError("cudaErrorInsufficientDriver"), "CuPy is installed but no CUDA GPU is usable: cudaErrorInsufficientDriver"),
])
def test_cuda_with_cupy_but_no_gpu_is_a_clear_runtime_error(device_count, message, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy_module(device_count))
    _isolate_device_state(monkeypatch)
    with pytest.raises(RuntimeError, match=message):
        with minidl.device("cuda"):
            pass
    assert minidl.current_device() == "cpu"


def test_device_context_selects_cuda_and_restores(fake_cupy):
    with minidl.device("cuda"):
        assert minidl.current_device() == "cuda"
        made = minidl.tensor([1.0, 2.0])
        layer = nn.Dense(2)
        layer.build((None, 3))
    assert minidl.current_device() == "cpu"
    assert made.device == "cuda" and isinstance(made.data, FakeDeviceArray)
    assert all(p.device == "cuda" for p in layer.parameters())


# ------------------------------------------------------------------------- dispatch
def reference_kernels():
    """(family, name, function) for every function defined in kernels/reference."""
    package = importlib.import_module("minidl.kernels.reference")
    found = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if not name.startswith("_") and function.__module__ == module.__name__:
                found.append((info.name, name, function))
    return found


def declared(target):
    """{(family, name)} of the kernels `target` declares in minidl.kernels (NUMBA_KERNELS,
    CUDA_KERNELS, which the cudasim test target shares)."""
    return {(family, name) for family, names in kernels.DECLARED[target].items() for name in names}


def defined_by(target):
    """{(family, name)} of the reference kernels that `target`'s own modules define."""
    found = set()
    for family, name, _ in reference_kernels():
        try:
            kernels.own_kernel(target, family, name)
        except LookupError:
            continue
        found.add((family, name))
    return found


def assert_target_defines_its_declared_kernels(target):
    """The declaration is the truth both ways: a declared kernel the target lost (renamed,
    deleted) would silently run the reference; an undeclared one would escape the twin
    tests' lists."""
    package, table = f"minidl/kernels/{kernels._PACKAGES[target]}", f"{target.upper()}_KERNELS"
    listed, defined = declared(target), defined_by(target)
    references = {(family, name) for family, name, _ in reference_kernels()}
    assert listed <= references, f"{table} names kernels with no reference twin: {sorted(listed - references)}"
    assert not listed - defined, (f"{package} lacks {sorted(listed - defined)}, declared in {table}: "
                                  "calls would silently run the reference")
    assert not defined - listed, f"{package} defines {sorted(defined - listed)}: declare them in minidl.kernels.{table}"


def test_every_reference_family_is_found():
    families = {family for family, _, _ in reference_kernels()}
    assert {"activation", "dropout", "embedding", "conv", "pool", "recurrent"} <= families


def test_the_numba_target_defines_every_declared_kernel():
    assert_target_defines_its_declared_kernels("numba")


def test_the_cuda_target_defines_every_declared_kernel(fake_cupy):
    assert_target_defines_its_declared_kernels("cuda")


def test_the_cudasim_target_is_the_cuda_kernels():
    assert kernels.DECLARED["cudasim"] is kernels.CUDA_KERNELS
    assert kernels._PACKAGES["cudasim"] == kernels._PACKAGES["cuda"] == "numba_cuda"


def test_own_kernel_never_returns_the_fallback():
    assert kernels.own_kernel("numba", "conv", "conv2d_backward").__module__ == "minidl.kernels.numba_cpu.conv"
    # numba_cpu/conv.py imports the reference's output_size: that is not a kernel of its own
    with pytest.raises(LookupError, match="kernels/numba_cpu/conv.py defines no output_size of its own"):
        kernels.own_kernel("numba", "conv", "output_size")
    with pytest.raises(LookupError, match="kernels/numba_cpu/activation.py defines no no_such_kernel"):
        kernels.own_kernel("numba", "activation", "no_such_kernel")
    with pytest.raises(LookupError, match="kernels/numba_cpu/no_such_family.py defines no relu_forward"):
        kernels.own_kernel("numba", "no_such_family", "relu_forward")


def expected_kernel(target, family, name, reference):
    """What dispatch must return: the target's own kernel where declared, else the reference."""
    return kernels.own_kernel(target, family, name) if (family, name) in declared(target) else reference


@pytest.mark.parametrize("target, package", [("numpy", "reference"), ("numba", "numba_cpu"), ("cudasim", "numba_cuda")])
def test_numpy_arrays_dispatch_to_the_cpu_target(target, package):
    x = np.zeros(3, dtype=np.float32)
    with kernels.use(target):
        assert kernels.target_for(x) == target
        for family, name, reference in reference_kernels():
            expected = reference if target == "numpy" else expected_kernel(target, family, name, reference)
            assert kernels.get_kernel(family, name, x) is expected, f"{family}.{name}"
        relu = kernels.get_kernel("activation", "relu_forward", x)
    assert relu.__module__ == f"minidl.kernels.{package}.activation"


@pytest.mark.parametrize("value, target", [("numpy", "numpy"), ("NUMBA", "numba"), ("cudasim", "cudasim")])
def test_minidl_kernels_chooses_the_cpu_target(value, target, monkeypatch):
    monkeypatch.setitem(kernels._state, "cpu_target", None)
    monkeypatch.setenv("MINIDL_KERNELS", value)
    assert kernels.cpu_target() == target
    assert kernels.target_for(np.zeros(1)) == target


def test_the_cudasim_target_without_the_simulator_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(kernels._state, "cpu_target", None)
    monkeypatch.setenv("MINIDL_KERNELS", "cudasim")
    monkeypatch.setenv("NUMBA_ENABLE_CUDASIM", "0")
    with pytest.raises(RuntimeError, match="MINIDL_KERNELS=cudasim: .* set NUMBA_ENABLE_CUDASIM=1"):
        kernels.cpu_target()
    with pytest.raises(RuntimeError, match="the cudasim kernel target: .* set NUMBA_ENABLE_CUDASIM=1"):
        kernels.set_cpu_target("cudasim")


def test_an_unknown_minidl_kernels_is_a_value_error(monkeypatch):
    monkeypatch.setitem(kernels._state, "cpu_target", None)
    monkeypatch.setenv("MINIDL_KERNELS", "cuda")
    with pytest.raises(ValueError, match="MINIDL_KERNELS='cuda': choose one of numpy, numba"):
        kernels.cpu_target()


def test_cupy_arrays_dispatch_to_the_cuda_target_or_fall_back(fake_cupy):
    x, host = on_fake_gpu([1.0]), np.zeros(1, dtype=np.float32)
    assert kernels.target_for(x) == "cuda" and kernels.target_for(host, x) == "cuda"
    for family, name, reference in reference_kernels():
        assert kernels.get_kernel(family, name, x) is expected_kernel("cuda", family, name, reference), f"{family}.{name}"
    # The fallback is the reference itself, which takes CuPy from its inputs (a product: cuBLAS).
    assert kernels.get_kernel("math", "matmul", x) is kernels.reference_kernel("math", "matmul")


@pytest.mark.parametrize("target", ["numba", "cuda"])
def test_twins_take_the_reference_arguments(target, request):
    """Same names and parameters as the reference twin."""
    if target == "cuda":
        request.getfixturevalue("fake_cupy")
    for family, name in sorted(declared(target)):
        reference = list(inspect.signature(kernels.reference_kernel(family, name)).parameters)
        got = list(inspect.signature(kernels.own_kernel(target, family, name)).parameters)
        assert got == reference, f"{target} {family}.{name}{tuple(got)} vs reference{tuple(reference)}"


def test_ops_on_cupy_arrays_reach_the_cuda_kernels(fake_cupy):
    # The simulator is on here (tests/conftest.py): each launch refuses the fake GPU's
    # arrays, naming its kernel, after the op has dispatched to it.
    x = Tensor(on_fake_gpu([[-1.0, 2.0]]), requires_grad=True)
    for op, kernel in [(F.relu, "_relu_forward"), (lambda t: F.elu(t), "_elu_forward"),
                       (lambda t: F.dropout(t, 0.5), "_dropout_forward")]:
        with pytest.raises(RuntimeError, match=f"{kernel} met CuPy arrays while NUMBA_ENABLE_CUDASIM=1"):
            op(x)


def test_an_unknown_kernel_on_cupy_arrays_is_a_lookup_error(fake_cupy):
    with pytest.raises(LookupError, match="no reference kernel activation.no_such_kernel"):
        kernels.get_kernel("activation", "no_such_kernel", on_fake_gpu([1.0]))


def test_cuda_kernel_modules_import_without_cupy(no_cupy):
    # They take the array module from their inputs: NumPy under the simulator.
    module = importlib.import_module("minidl.kernels.numba_cuda.activation")
    assert "cupy" not in vars(module)


# ---------------------------------------------------- no GPU code without a GPU
_TRAIN_WITHOUT_CUPY = r"""
import importlib.abc, json, sys

attempts = []

class RefuseCupy(importlib.abc.MetaPathFinder):
    # Every import of cupy is recorded and fails, as on a machine without CuPy.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("cupy", "cupyx", "cupy_backends"):
            attempts.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, RefuseCupy())

import numpy as np
import minidl
from minidl import functional as F, nn, optim

def step(model, ids, labels, optimizer):
    model.train()
    loss = model.regularized(F.binary_cross_entropy(model(ids), labels))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss.item())

minidl.manual_seed(0)
rng = np.random.default_rng(0)
ids = rng.integers(0, 10, size=(4, 8)).astype(np.int32)
labels = rng.integers(0, 2, size=(4, 1)).astype(np.float32)
trained = {}
model = minidl.Sequential([nn.Embedding(10, 4), nn.Flatten(), nn.Dense(6, activation="relu"),
                       nn.Dropout(0.5), nn.BatchNormalization(), nn.Dense(1, activation="sigmoid")])
model.build((None, 8))
trained["sequential"] = step(model, ids, labels, optim.Adam(model.parameters()))
import importlib.util
if importlib.util.find_spec("minidl.models.url") is not None:
    from minidl.models import url
    sizes = dict(max_len=8, emb_dim=4, max_vocab_len=10)
    for model in (url.simple_lstm(lstm_output_size=3, **sizes),
                  url.lstm_conv(lstm_output_size=3, filters=4, kernel_size=3, pool_size=2, **sizes),
                  url.conv_fully(filters=4, kernel_sizes=(2, 3), hidden_units=(5,), **sizes)):
        trained[model.name] = step(model, ids, labels, model.make_optimizer())
print(json.dumps({"attempts": attempts, "trained": trained,
                  "modules": sorted(m for m in sys.modules if m.startswith(("minidl", "cupy", "numba.cuda")))}))
"""


def test_importing_and_training_never_touch_gpu_code():
    env = {k: v for k, v in os.environ.items() if k not in ("MINIDL_DEVICE", "MINIDL_KERNELS")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    run = subprocess.run([sys.executable, "-c", _TRAIN_WITHOUT_CUPY], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["attempts"] == []
    assert all(np.isfinite(loss) for loss in report["trained"].values()), report["trained"]
    modules = report["modules"]
    assert not [m for m in modules if m == "minidl.kernels.numba_cuda" or m.startswith(("minidl.kernels.numba_cuda.", "cupy"))]
    assert "numba.cuda" not in modules  # nor Numba's CUDA package, GPU or simulator
    assert "minidl.kernels.numba_cpu.activation" in modules  # the step did dispatch kernels


# ------------------------------------------------------------- devices never mix
def test_mixing_devices_in_one_op_is_a_value_error(fake_cupy):
    on_gpu = Tensor(on_fake_gpu([1.0, 2.0]), requires_grad=True)
    on_cpu = minidl.tensor([3.0, 4.0])
    with pytest.raises(ValueError, match=r"Add: inputs are on different devices \(cpu, cuda\); move them with .to\(device\) first"):
        on_gpu + on_cpu
    with pytest.raises(ValueError, match="MatMul: inputs are on different devices"):
        F.matmul(on_cpu, on_gpu)
    with pytest.raises(ValueError, match="an array on cpu was combined with a tensor on cuda"):
        on_gpu * np.ones(2, dtype=np.float32)


def test_a_model_on_the_gpu_refuses_host_inputs(fake_cupy):
    layer = nn.Dense(2)
    layer.build((None, 3))
    layer.to("cuda")
    with pytest.raises(ValueError, match="inputs are on different devices"):
        layer(np.ones((1, 3), dtype=np.float32))


# --------------------------------------------------------- moving between devices
def test_tensor_to_moves_a_leaf_and_keeps_its_flag(fake_cupy):
    t = minidl.tensor([1.0, 2.0], requires_grad=True)
    assert t.to("cpu") is t
    moved = t.to("cuda")
    assert isinstance(moved.data, FakeDeviceArray) and moved.device == "cuda"
    assert moved.requires_grad and moved.is_leaf
    back = moved.cpu()
    assert type(back.data) is np.ndarray and back.device == "cpu"
    np.testing.assert_array_equal(back.data, [1.0, 2.0])


def _small_model():
    model = minidl.Sequential([nn.Dense(3), nn.BatchNormalization(), nn.Dense(1)])
    model.build((None, 4))
    return model


def test_module_to_moves_parameters_and_buffers_and_state_stays_numpy(fake_cupy):
    model = _small_model()
    before = model.state_dict()
    model.to("cuda")
    assert all(isinstance(p.data, FakeDeviceArray) for p in model.parameters())
    assert all(isinstance(data, FakeDeviceArray) for _, data in model.named_buffers())
    state = model.state_dict()
    assert all(type(value) is np.ndarray for value in state.values())
    for name, value in before.items():
        np.testing.assert_array_equal(state[name], value)
    on_cpu = _small_model().load_state_dict(state)
    assert all(type(p.data) is np.ndarray for p in on_cpu.parameters())
    model.load_state_dict(on_cpu.state_dict())  # CPU state into a GPU model stays on the GPU
    assert all(isinstance(p.data, FakeDeviceArray) for p in model.parameters())
    model.to("cpu")
    assert all(type(p.data) is np.ndarray for p in model.parameters())


def test_a_model_saved_from_the_gpu_loads_on_the_cpu(fake_cupy, tmp_path):
    io = pytest.importorskip("minidl.io", reason="minidl.io (save/load) is not in this checkout")
    model = _small_model()
    optimizer = minidl.optim.Adam(model.parameters())
    model.to("cuda")
    expected = model.state_dict()
    io.save(tmp_path / "gpu.mdl", model, optimizer=optimizer, input_shape=(None, 4))
    loaded = io.load(tmp_path / "gpu.mdl").model
    assert all(type(p.data) is np.ndarray for p in loaded.parameters())
    for name, value in loaded.state_dict().items():
        np.testing.assert_array_equal(value, expected[name])


# ------------------------------------------------------------- the GPU check script
def test_gpu_check_script_dry_run_finds_its_tests_and_benchmark(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MINIDL_DEVICE"}
    env["OUT"] = str(tmp_path)
    run = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "dry run: ok" in run.stdout
    assert (tmp_path / "gpu_check.log").exists()
