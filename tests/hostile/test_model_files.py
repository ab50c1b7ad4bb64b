"""Model files: corrupt, truncated, foreign, from a newer finar, with parameters that contradict
their weights, extra or missing parameters, and files moved between devices.

A file is validated fully when it is loaded (:func:`finar.models.load` and every ``load``
classmethod), so a damaged one fails there with :class:`~finar.errors.ModelFileError` naming the
file and the problem, never later with a traceback from deep inside a model.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import finar
from finar.errors import DataError, DeviceWarning, FileExistsFinarError, ModelFileError, NotFittedError
from tests.hostile.conftest import FACTORIES, NEURAL, raises_exactly

MODELS = sorted(FACTORIES)
HAS_CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def files(tmp_path_factory, fitted) -> dict[str, Path]:
    """One saved file per model (never modified: tests edit copies)."""
    folder = tmp_path_factory.mktemp("models")
    return {name: fitted(name).save(folder / f"{name}.pt") for name in MODELS}


def _edited(path: Path, tmp_path: Path, edit) -> Path:
    payload = torch.load(path, weights_only=True)
    edit(payload)
    out = tmp_path / f"edited-{path.name}"
    torch.save(payload, out)
    return out


# ---- files that are not finar model files -------------------------------------------------------------
def test_missing_file(tmp_path):
    with raises_exactly(ModelFileError, "not found"):
        finar.models.load(tmp_path / "nope.pt")


def test_a_folder_is_not_a_model_file(tmp_path):
    with raises_exactly(ModelFileError, "not found"):
        finar.models.load(tmp_path)


@pytest.mark.parametrize("content", [b"", b"junk" * 100, b"PK\x03\x04" + b"\x00" * 60],
                         ids=["empty", "junk", "broken-zip"])
def test_bytes_that_are_no_torch_file(tmp_path, content):
    path = tmp_path / "m.pt"
    path.write_bytes(content)
    with raises_exactly(ModelFileError, "not a readable finar model"):
        finar.models.load(path)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_file(name, keep, files, tmp_path):
    data = files[name].read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: int(len(data) * keep)])
    with raises_exactly(ModelFileError, "not a readable finar model"):
        finar.models.load(cut)


def test_a_torch_file_of_someone_else(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with raises_exactly(ModelFileError, "not a finar model"):
        finar.models.load(path)


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "finar-model", "x": Evil()}, path)
    with raises_exactly(ModelFileError, "not a readable finar model"):
        finar.models.load(path)


def test_a_file_from_a_newer_finar(files, tmp_path):
    path = _edited(files["garch"], tmp_path, lambda p: p.update(file_version=99))
    with raises_exactly(ModelFileError, "upgrade finar"):
        finar.models.load(path)


def test_an_unknown_model_name(files, tmp_path):
    path = _edited(files["garch"], tmp_path, lambda p: p.update(model="nosuchmodel"))
    with raises_exactly(ModelFileError, "unknown model 'nosuchmodel'"):
        finar.models.load(path)


def test_parameters_that_are_not_a_mapping(files, tmp_path):
    path = _edited(files["garch"], tmp_path, lambda p: p.update(params=[1, 2]))
    with raises_exactly(ModelFileError, "not a mapping"):
        finar.models.load(path)


def test_a_file_without_state(files, tmp_path):
    path = _edited(files["ar"], tmp_path, lambda p: p.pop("state"))
    with raises_exactly(ModelFileError, "state is missing"):
        finar.models.load(path)


# ---- parameters: extra, missing, contradicting the weights ---------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_an_extra_parameter(name, files, tmp_path):
    path = _edited(files[name], tmp_path, lambda p: p["params"].update(bogus=1))
    with raises_exactly(ModelFileError, r"unexpected \['bogus'\]"):
        finar.models.load(path)


@pytest.mark.parametrize("name", MODELS)
def test_a_missing_parameter(name, files, tmp_path):
    first = next(iter(torch.load(files[name], weights_only=True)["params"]))
    path = _edited(files[name], tmp_path, lambda p: p["params"].pop(first))
    with raises_exactly(ModelFileError, f"missing \\['{first}'\\]"):
        finar.models.load(path)


CONTRADICTIONS = [
    ("ar", {"order": 5}), ("ar", {"innovations": "bootstrap"}),
    ("garch", {"dist": "skewt"}), ("garch", {"vol": "gjr"}), ("garch", {"mean": "ar", "lags": 3}),
    ("garchx", {"vol": "garch"}), ("garchx", {"dist": "skewt"}),
    ("wavenet", {"residual_channels": 16}), ("wavenet", {"cycles": 2}), ("wavenet", {"kernel_size": 3}),
    ("wavenet", {"head": "categorical"}), ("wavenet", {"n_components": 5}),
    ("transformer", {"config": {"context": 16, "d_model": 32, "n_layers": 1, "n_heads": 2, "n_kv_heads": 1}}),
    ("pixelcnn", {"channels": 16}), ("pixelcnn", {"n_layers": 4}),
]


@pytest.mark.parametrize(("name", "change"), CONTRADICTIONS,
                         ids=[f"{n}-{'-'.join(c)}" for n, c in CONTRADICTIONS])
def test_parameters_that_contradict_the_weights(name, change, files, tmp_path):
    def edit(payload):
        params = payload["params"]
        for key, value in change.items():
            params[key] = {**params[key], **value} if isinstance(value, dict) else value

    path = _edited(files[name], tmp_path, edit)
    with raises_exactly(ModelFileError, "does not match its parameters"):
        finar.models.load(path)


def test_an_invalid_parameter_value(files, tmp_path):
    path = _edited(files["garch"], tmp_path, lambda p: p["params"].update(dist="cauchy"))
    with raises_exactly(ModelFileError, "dist"):
        finar.models.load(path)


def test_an_ensemble_member_that_contradicts_its_state(files, tmp_path):
    def edit(payload):
        payload["state"]["members"][0]["params"]["dist"] = "skewt"

    path = _edited(files["ensemble"], tmp_path, edit)
    with raises_exactly(ModelFileError, "does not match its parameters"):
        finar.models.load(path)


@pytest.mark.parametrize("name", NEURAL)
def test_weights_of_another_shape(name, files, tmp_path):
    def edit(payload):
        net = payload["state"]["network"]
        key = next(k for k, v in net.items() if v.ndim >= 2)
        net[key] = torch.zeros(*[s + 1 for s in net[key].shape])

    path = _edited(files[name], tmp_path, edit)
    with raises_exactly(ModelFileError, "does not match its parameters"):
        finar.models.load(path)


@pytest.mark.parametrize("name", NEURAL)
def test_weights_missing_a_tensor(name, files, tmp_path):
    def edit(payload):
        net = payload["state"]["network"]
        net.pop(next(iter(net)))

    path = _edited(files[name], tmp_path, edit)
    with raises_exactly(ModelFileError, "does not match its parameters"):
        finar.models.load(path)


# ---- round trips and devices -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_a_saved_model_loads_and_scores_the_same(name, files, fitted, r):
    back = finar.models.load(files[name])
    assert type(back) is type(fitted(name))
    np.testing.assert_allclose(back.log_prob(r).to_numpy(), fitted(name).log_prob(r).to_numpy(), rtol=1e-6)


@pytest.mark.parametrize("name", NEURAL)
def test_load_maps_the_tensors_onto_the_device_asked_for(name, files, r, fitted):
    back = finar.models.load(files[name], device="cpu")
    assert back.device == "cpu"
    assert all(p.device.type == "cpu" for p in back.network_.parameters())
    np.testing.assert_allclose(back.log_prob(r).to_numpy(), fitted(name).log_prob(r).to_numpy(), rtol=1e-6)


@pytest.mark.parametrize("name", NEURAL)
def test_a_file_saved_for_cuda_loads_on_the_cpu(name, files, tmp_path, r):
    """As a file from a GPU machine: device 'cuda' in its parameters (its tensors are mapped anyway)."""
    path = _edited(files[name], tmp_path, lambda p: p["params"].update(device="cuda:7"))
    back = finar.models.load(path, device="cpu")
    assert back.device == "cpu" and np.isfinite(back.log_prob(r).dropna()).all()
    if torch.cuda.device_count() < 8:  # without device=, a device this machine lacks: the CPU, said aloud
        with pytest.warns(DeviceWarning, match="cuda:7"):
            again = finar.models.load(path)
        assert again.device == "cpu"


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU to write a file from CUDA tensors")
def test_a_model_fitted_on_cuda_loads_on_the_cpu(r, tmp_path):
    m = FACTORIES["wavenet"]().set_params(device="cuda").fit(r)
    path = m.save(tmp_path / "cuda.pt")
    back = finar.models.load(path, device="cpu")
    assert all(p.device.type == "cpu" for p in back.network_.parameters())
    np.testing.assert_allclose(back.log_prob(r).to_numpy(), m.log_prob(r).to_numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("device", ["bogus", "cuda:99", "tpu"])
def test_load_refuses_a_device_that_does_not_exist(device, files):
    with raises_exactly(DataError, "device"):
        finar.models.load(files["wavenet"], device=device)


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a GPU")
def test_load_onto_cuda_without_a_gpu_says_so(files):
    with raises_exactly(DataError, "no CUDA GPU"):
        finar.models.load(files["wavenet"], device="cuda")


def test_a_classical_model_loads_with_a_device(files, r, fitted):
    back = finar.models.load(files["garch"], device="cpu")  # no tensors, no device parameter: accepted
    np.testing.assert_allclose(back.log_prob(r).to_numpy(), fitted("garch").log_prob(r).to_numpy())


def test_an_ensemble_of_a_cuda_network_loads_on_the_cpu(fitted, r, tmp_path):
    ens = finar.models.Ensemble([finar.models.GARCH(), FACTORIES["wavenet"]()]).fit(r)
    path = ens.save(tmp_path / "ens.pt")
    path = _edited(path, tmp_path, lambda p: p["state"]["members"][1]["params"].update(device="cuda:7"))
    back = finar.models.load(path, device="cpu")
    assert back.members_[1].device == "cpu"
    np.testing.assert_allclose(back.log_prob(r).to_numpy(), ens.log_prob(r).to_numpy(), rtol=1e-6)


# ---- tick models and the detector --------------------------------------------------------------------
def test_tick_model_load_takes_a_device(tick_model, trades, tmp_path):
    back = finar.ticks.TickModel.load(tick_model.save(tmp_path / "tm.pt"), device="cpu")
    assert back.device == "cpu"
    pd.testing.assert_frame_equal(back.log_prob(trades.iloc[:500]), tick_model.log_prob(trades.iloc[:500]))


def test_tick_model_load_of_a_forecaster_file(files):
    with raises_exactly(ModelFileError, "not a TickModel"):
        finar.ticks.TickModel.load(files["garch"])


def test_tick_model_with_contradicting_parameters(tick_model, tmp_path):
    path = _edited(tick_model.save(tmp_path / "tm.pt"), tmp_path, lambda p: p["params"].update(channels=16))
    with raises_exactly(ModelFileError, "does not match its parameters"):
        finar.ticks.TickModel.load(path)


@pytest.mark.parametrize("cls", ["Hawkes", "ACD", "SeasonalPoisson"])
def test_tick_baselines_round_trip_and_refuse_damage(cls, trades, tmp_path):
    m = getattr(finar.ticks, cls)().fit(trades)
    path = m.save(tmp_path / "b.pt")
    back = finar.models.load(path, device="cpu")
    pd.testing.assert_frame_equal(back.log_prob(trades.iloc[:300]), m.log_prob(trades.iloc[:300]))
    damaged = _edited(path, tmp_path, lambda p: p["state"].clear())
    with raises_exactly(ModelFileError, "does not match its parameters"):
        finar.models.load(damaged)


def test_detector_file_whose_model_contradicts_its_state(fitted, r, tmp_path):
    det = finar.AnomalyDetector(finar.models.GARCH(dist="t")).fit(r)
    path = det.save(tmp_path / "det.pt")
    assert finar.models.load(path, device="cpu").score(r.iloc[-20:], context=r.iloc[:-20]).shape[0] == 20
    bad = _edited(path, tmp_path, lambda p: p["state"]["fitted_model"]["params"].update(dist="normal"))
    with raises_exactly(ModelFileError, "does not match its parameters"):
        finar.models.load(bad)


# ---- saving ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ar", "wavenet", "ensemble"])
def test_save_never_replaces_a_file_unless_asked(name, fitted, tmp_path):
    path = tmp_path / "m.pt"
    path.write_bytes(b"precious")
    with raises_exactly(FileExistsFinarError, "exists"):
        fitted(name).save(path)
    assert path.read_bytes() == b"precious"
    fitted(name).save(path, overwrite=True)
    assert type(finar.models.load(path)) is type(fitted(name))


def test_save_refuses_a_folder(fitted, tmp_path):
    with raises_exactly(FileExistsFinarError, "folder"):
        fitted("garch").save(tmp_path, overwrite=True)


def test_save_of_an_unfitted_model(tmp_path):
    with raises_exactly(NotFittedError, "save"):
        finar.models.GARCH().save(tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()


def test_detector_and_tick_model_saves_refuse_existing_files(tick_model, fitted, r, tmp_path):
    path = tmp_path / "x.pt"
    path.write_bytes(b"keep")
    with raises_exactly(FileExistsFinarError, "exists"):
        tick_model.save(path)
    det = finar.AnomalyDetector(finar.models.AR(order=1)).fit(r)
    with raises_exactly(FileExistsFinarError, "exists"):
        det.save(path)
    assert path.read_bytes() == b"keep"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        det.save(path, overwrite=True)
