"""Sweeps, the conditional estimator's store and infinite-width samples record a registered activation's source
digest, as MLPTrial.config does: two different functions registered in turn under one name never share a stored
result.  Built-in activations add nothing, so the keys of existing stores stay what they were."""

import json

import pytest

import montecarlo as mc
from montecarlo.testing import sweep, unregister_activation

NAME = "swish_keys"


def first(z, xp):
    return z * 0.5 * (1 + xp.tanh(0.5 * z))


def second(z, xp):  # the same values, other code: another digest
    return z * 0.5 * (1 + xp.tanh(0.5 * z)) + 0.0 * z


def records(activation, out):
    """Sweep point keys and the record a point stores, the conditional store's manifest and an infinite-width
    sample's config for ``activation``."""
    spec = mc.SweepSpec.from_mapping({"width": 6, "depth": 1, "d": 4, "n_samples": 4, "activation": activation,
                                      "output_activation": False, "labels": "random_sign", "trials": 8})
    net = mc.MLP(4, 6, 1, activation=activation, output_activation=False)
    mc.conditional_cosine_tail(net, 4, [0.5], loss="logistic", networks=2, planes=4, grid=9, seed=0, out=out)
    manifest = json.loads((out / "manifest.json").read_text())
    infinite = mc.sample_infinite_width(net, 4, 8, labels="random_sign", loss="square", seed=0).config
    record = sweep.point_record(next(iter(spec.points().values())))
    return spec, sorted(spec.points()), manifest, infinite, record


def registered(function, out):
    mc.register_activation(NAME, function)
    try:
        return records(NAME, out)
    finally:
        unregister_activation(NAME)


def test_two_functions_under_one_name_get_different_keys(tmp_path):
    spec_a, keys_a, manifest_a, infinite_a, record_a = registered(first, tmp_path / "a")
    _, keys_b, manifest_b, infinite_b, _ = registered(second, tmp_path / "b")
    _, keys_again, manifest_again, infinite_again, _ = registered(first, tmp_path / "c")
    assert keys_a != keys_b and keys_a == keys_again  # before: the same key, so the second reused the first's point
    digest_a = infinite_a["activation_source"]
    assert infinite_b["activation_source"] != digest_a and infinite_again == infinite_a
    assert manifest_a["configuration"]["activation_source"] == digest_a
    assert manifest_a["hash"] != manifest_b["hash"] and manifest_a["hash"] == manifest_again["hash"]
    # a conditional store made with the first function is refused to the second (another configuration)
    mc.register_activation(NAME, second)
    try:
        with pytest.raises(mc.StoreMismatch):
            mc.conditional_cosine_tail(mc.MLP(4, 6, 1, activation=NAME, output_activation=False), 4, [0.5], loss="logistic",
                                       networks=2, planes=4, grid=9, seed=0, out=tmp_path / "a")
    finally:
        unregister_activation(NAME)
    # the stored point records the digest with its configuration
    assert record_a == {**next(iter(spec_a.points().values())), "activation_source": digest_a}


def test_a_builtin_activation_keeps_the_keys_of_existing_stores(tmp_path):
    spec, keys, manifest, infinite, record = records("tanh", tmp_path / "store")
    # the key as stores made before hash it: the point and the sweep's settings, nothing else
    expected = sorted(sweep.config_hash({"point": point, "trials": 8, "seed": 0, "dtype": "float64",
                                         "method": "auto"})[:20] for point in spec.points().values())
    assert keys == expected
    assert "activation_source" not in manifest["configuration"] and "activation_source" not in infinite
    assert record == next(iter(spec.points().values()))
