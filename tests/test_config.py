import json

import pytest

from ssync_lib.config import PROFILES, Config, apply_overrides, get_config, resolve_path


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profiles_roundtrip_through_json(name):
    cfg = get_config(name)
    again = Config.from_dict(json.loads(cfg.to_json()))
    assert again == cfg
    assert cfg.profile == name


def test_published_table_values():
    movi_c, movi_e, ytvis = get_config("movi_c"), get_config("movi_e"), get_config("ytvis")
    assert (movi_c.model.backbone, movi_c.data.input_size, movi_c.model.num_slots, movi_c.model.slot_dim) == (
        "vit_small_patch14_dinov2", 336, 11, 64)
    assert (movi_e.model.backbone, movi_e.model.num_slots, movi_e.model.slot_dim, movi_e.train.max_steps) == (
        "vit_base_patch14_dinov2", 15, 128, 300_000)
    assert (ytvis.data.input_size, ytvis.model.num_slots, ytvis.objective.merge_iou) == (518, 7, 0.6)
    assert movi_c.train.grad_clip == 0.05 and movi_c.train.warmup_steps == 2500


@pytest.mark.parametrize("profile, level", [("cpu_tex", "synth-tex"), ("cpu_tex_mild", "synth-tex-mild")])
def test_tex_profiles_are_the_cpu_recipe_on_a_textured_level(profile, level):
    cpu, tex = get_config("cpu").to_dict(), get_config(profile).to_dict()
    assert (tex["data"]["level"], tex["data"]["root"], tex["profile"]) == (level, f"data/{level}", profile)
    for section in ("model", "objective", "train"):
        assert tex[section] == cpu[section]
    assert {k for k in cpu["data"] if cpu["data"][k] != tex["data"][k]} == {"level", "root"}


def test_overrides_dotted_and_short_keys_parse_types():
    cfg = get_config("smoke", ["model.num_slots=7", "lr=0.002", "use_keys=true", 'backbone_kwargs={"depth": 2}'])
    assert cfg.model.num_slots == 7 and cfg.train.lr == 0.002 and cfg.model.use_keys is True
    assert cfg.model.backbone_kwargs == {"depth": 2}
    apply_overrides(cfg, {"objective.name": "ssync", "max_steps": 9})
    assert cfg.objective.name == "ssync" and cfg.train.max_steps == 9


def test_bad_overrides_name_the_key():
    with pytest.raises(KeyError, match="nope"):
        get_config("smoke", ["nope=1"])
    with pytest.raises(KeyError, match="model.nope"):
        get_config("smoke", ["model.nope=1"])
    with pytest.raises(ValueError, match="num_slots"):
        get_config("smoke", ["num_slots=many"])
    with pytest.raises(ValueError, match="key=value"):
        get_config("smoke", ["num_slots"])
    with pytest.raises(KeyError, match="unknown profile 'gpu'"):
        get_config("gpu")


def test_relative_paths_resolve_against_project_root(tmp_path):
    assert resolve_path("data/smoke").parts[-2:] == ("data", "smoke")
    assert (resolve_path(".") / "pyproject.toml").exists()
    assert resolve_path(tmp_path) == tmp_path
