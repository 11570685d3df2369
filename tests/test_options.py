"""Config fields are described once, on the dataclass, and the command line is generated from them."""
from __future__ import annotations

import argparse
import dataclasses

import pytest

from gancourse.cli import build_parser, main
from gancourse.dynamics import METHODS, DiracGAN, Method
from gancourse.dynamics.games import LOSSES as DIRAC_LOSSES
from gancourse.dynamics.games import REGULARIZERS
from gancourse.nn import LOSSES, PENALTIES
from gancourse.options import add_flags, as_flag, check_choices, choices_of, flag_of, given, help_of, option
from gancourse.toy.config import ToyConfig, recommended


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions}


@pytest.mark.parametrize("cls", [ToyConfig, DiracGAN, Method])
def test_every_field_is_described(cls):
    for f in dataclasses.fields(cls):
        if not f.init:  # derived in __post_init__, not a setting
            continue
        text = help_of(cls, f.name)
        assert text and text != f.name, f"{cls.__name__}.{f.name} has no help text"


def test_toy_flags_come_from_the_config_fields():
    actions = _options(_subparser("toy"))
    defaults = recommended()
    for f in dataclasses.fields(ToyConfig):
        action = actions[f.name]
        assert flag_of(ToyConfig, f.name) in action.option_strings
        assert help_of(ToyConfig, f.name) in action.help
        shown = ",".join(map(str, defaults_value)) if isinstance(defaults_value := getattr(defaults, f.name), tuple) \
            else str(defaults_value)
        assert f"(default: {shown})" in action.help
        want = choices_of(ToyConfig, f.name)
        assert (list(want) if want is not None else None) == action.choices
        assert action.default is None  # presets show through flags that were not given
    assert choices_of(ToyConfig, "loss") == tuple(LOSSES)
    assert choices_of(ToyConfig, "penalty") == tuple(PENALTIES)


def test_dynamics_flags_come_from_the_game_and_method_fields():
    actions = _options(_subparser("dynamics"))
    for cls in (DiracGAN, Method):
        for f in dataclasses.fields(cls):
            if f.name == "quadrature" or not f.init:  # kept off the command line on purpose
                assert f.name not in actions
                continue
            assert help_of(cls, f.name) in actions[f.name].help
    assert actions["name"].option_strings == ["--method"] and actions["name"].choices == list(METHODS)
    assert actions["h"].option_strings == ["--h", "--eta"]
    assert actions["loss"].choices == list(DIRAC_LOSSES) and actions["reg"].choices == list(REGULARIZERS)
    assert "(default: 1.0)" in actions["sigma"].help  # the command's own default, stated where it is used


def test_the_penalty_weight_and_the_consensus_strength_are_two_flags():
    actions = _options(_subparser("dynamics"))
    assert actions["gamma"].option_strings == ["--gamma"] and "penalty weight" in actions["gamma"].help
    assert actions["consensus"].option_strings == ["--consensus"] and "consensus" in actions["consensus"].help
    assert "gamma" not in {f.name for f in dataclasses.fields(Method)}
    assert Method("consensus", consensus=0.5).consensus == 0.5


def test_a_consensus_run_with_a_penalty_keeps_both_weights(capsys):
    import json

    assert main(["dynamics", "--reg", "r1", "--gamma", "0.3", "--method", "consensus", "--consensus", "2",
                 "--steps", "10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "gamma=0.3" in out["game"] and "strength=2" in out["method"]


def test_given_reads_back_only_the_flags_typed():
    args = _subparser("toy").parse_args(["--lr-g", "0.002", "--no-spectral-norm", "--g-hidden", "8,8"])
    assert given(args, ToyConfig) == {"lr_g": 0.002, "spectral_norm": False, "g_hidden": (8, 8)}


def test_as_flag_spells_values_as_typed():
    assert as_flag(ToyConfig, "g_hidden", (16, 16)) == "--g-hidden 16,16"
    assert as_flag(ToyConfig, "spectral_norm", False) == "--no-spectral-norm"
    assert as_flag(Method, "name", "altgd") == "--method altgd"


def test_check_choices_names_the_field_and_the_options():
    with pytest.raises(ValueError, match=r"unknown data 'grid26'; valid options are: .*'grid25'"):
        ToyConfig(data="grid26")

    @dataclasses.dataclass(frozen=True)
    class Small:
        kind: str = option("a", "a kind", choices=("a", "b"))

    check_choices(Small("b"))
    with pytest.raises(ValueError, match="unknown kind 'c'; valid options are: 'a', 'b'"):
        check_choices(Small("c"))


def test_option_refuses_mutable_defaults():
    with pytest.raises(TypeError, match="immutable"):
        option([1, 2], "widths")


def test_add_flags_on_a_plain_dataclass():
    @dataclasses.dataclass(frozen=True)
    class Plain:
        width: int = 3
        on: bool = False
        limit: float | None = None

    p = argparse.ArgumentParser()
    assert add_flags(p, Plain) == ["width", "on", "limit"]
    args = p.parse_args(["--width", "5", "--on", "--limit", "2.5"])
    assert given(args, Plain) == {"width": 5, "on": True, "limit": 2.5}
    with pytest.raises(SystemExit):
        p.parse_args(["--width", "five"])


def test_the_image_track_configs_are_described_too():
    pytest.importorskip("torch")
    from gancourse.deep.train_cyclegan import CycleGANConfig
    from gancourse.deep.train_gan import GAN_LOSSES, GANConfig

    for cls in (GANConfig, CycleGANConfig):
        for f in dataclasses.fields(cls):
            assert help_of(cls, f.name) != f.name, f"{cls.__name__}.{f.name} has no help text"
    assert choices_of(GANConfig, "loss") == GAN_LOSSES
    p = argparse.ArgumentParser()
    add_flags(p, GANConfig)
    assert given(p.parse_args(["--gp-lambda", "5", "--no-amp"]), GANConfig) == {"gp_lambda": 5.0, "amp": False}
