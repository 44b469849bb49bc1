"""The params sections of the synthesizer: every profile is valid, bad values stop with one line."""

import pytest
import yaml

from synthgen.params import ParamsError, validate_params
from synthgen.profiles import available_profiles, profile_text
from tests.conftest import ROOT


@pytest.mark.parametrize("name", available_profiles(ROOT))
def test_every_profile_is_valid(name):
    P = validate_params(yaml.safe_load(profile_text(ROOT, name)))
    assert P.training.steps * P.training.batch_size >= P.training.tasks
    assert max(P.evaluation.k) <= P.evaluation.n_samples


def test_params_yaml_is_the_default_profile():
    assert (ROOT / "params.yaml").read_text() == (ROOT / "profiles" / "default.yaml").read_text()


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("model", "heads", 3, "model: width (128) must be divisible by heads (3)"),
        ("training", "log_every", 7, "training: log_every (7) must divide checkpoint_every (200)"),
        ("training", "device", "gpu", "training.device = 'gpu': must be cpu, cuda or cuda:N (N the index of a GPU"),
        ("training", "device", "cuda:x", "training.device = 'cuda:x': must be cpu, cuda or cuda:N"),
        ("training", "device", "cuda:01", "training.device = 'cuda:01': must be cpu, cuda or cuda:N"),
        ("training", "compile", "yes", "training.compile = 'yes'"),
        ("training", "warmup", 1.0, "training.warmup = 1.0: must be a fraction of the steps in [0, 1)"),
        ("evaluation", "k", [1, 20], "evaluation: every k must be <= n_samples (10); got k = 20"),
        ("tasks", "n_examples", 82, "tasks: n_examples (82) exceeds the grid's 81 points"),
        ("decoding", "temperature", 0, "decoding.temperature = 0: must be a number > 0"),
        ("model", "dropout", "0.1", "model.dropout = '0.1'"),
    ],
)
def test_bad_values_stop_with_one_line(section, key, value, message):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw[section][key] = value
    with pytest.raises(ParamsError) as err:
        validate_params(raw)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:0", "cuda:1", "cuda:12"])
def test_training_device_names_one_device(device):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["training"]["device"] = device
    assert validate_params(raw).training.device == device
