"""ViT backbones under the recipes: every method that acts on the final feature takes
``--backbone vit_tiny`` (``vit_b16`` alike, slow); the ones that need CNN feature maps say so."""

import pytest

from recipes import adin, baseline, cdvm, ddan, dir_reid, episodic

FLAGS = ["--smoke", "--backbone", "vit_tiny", "--no-plots", "--threads", "1"]


@pytest.mark.parametrize("recipe", [baseline, dir_reid, ddan, episodic, adin],
                         ids=lambda r: r.__name__.rsplit(".", 1)[-1])
def test_final_feature_methods_train_on_a_vit(tmp_path, recipe):
    res = recipe.main([*FLAGS, "--out", str(tmp_path / "r.json")])
    assert res["config"]["backbone"] == "vit_tiny"
    assert all(0 <= m["mAP"] <= 100 for m in res["metrics"].values())


def test_ddan_splits_the_last_vit_block_off_as_its_mapping_network():
    from tests.recipes._build import build

    net = build(ddan.DDAN, ["--backbone", "vit_tiny"]).net
    assert net.tokens and len(net.mapping) == 3           # last block, final norm, [CLS]


@pytest.mark.parametrize("recipe,flags,name", [
    (cdvm, [], "--backbone"), (adin, ["--head", "dual_branch"], "--head")])
def test_feature_map_methods_refuse_a_vit_by_name(tmp_path, recipe, flags, name):
    with pytest.raises(ValueError, match=name):
        recipe.main([*FLAGS, *flags, "--out", str(tmp_path / "r.json")])


@pytest.mark.parametrize("backbone", ["mobilenetv2", "dualnorm"])
def test_cdvm_refuses_a_backbone_without_resnet_stages_by_name(tmp_path, backbone):
    """CDVM's block replaces each ResNet stage's last residual block: MobileNetV2 and the
    DualNorm network have none, and the error says so before any network is built."""
    with pytest.raises(ValueError, match="--backbone.*resnet_tiny"):
        cdvm.main(["--smoke", "--backbone", backbone, "--out", str(tmp_path / "r.json")])
