"""The two architectures: shapes, sizes, parameter budget and option validation."""

from __future__ import annotations

import pytest
import torch

from lowdose_bluesky.model import ARCHS, UNet, Yang2018Net, build_network


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_yang2018_layout_matches_the_paper() -> None:
    net = Yang2018Net(patch_size=32)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    encoder = [net.enc1, net.enc1_down, net.enc2, net.enc2_down, net.enc3, net.enc3_down]
    encoder_convs = [m[0] for m in encoder] + [m[0] for m in net.enc4]
    # 8 feature convolutions 16 -> 64 (three with stride 2) + the 1-kernel projection
    assert [c.out_channels for c in encoder_convs] == [16, 16, 32, 32, 32, 32, 64, 64, 1]
    assert sum(c.stride == (2, 2) for c in encoder_convs) == 3
    decoder = [m for d in (net.dec1, net.dec2, net.dec3, net.dec4) for m in d.modules()]
    decoder = [m for m in decoder if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
    assert len(decoder) == 9
    assert [m.out_channels for m in decoder] == [64, 64, 32, 32, 32, 32, 16, 16, 1]
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in decoder) == 3
    dense = [m for m in net.dense if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in dense] == [8, 8, 16]
    assert len(convs) >= 9
    assert 150_000 < _n_params(net) < 250_000


@pytest.mark.parametrize("patch", [16, 24, 32, 64])
def test_yang2018_maps_patches_to_patches(patch: int) -> None:
    net = Yang2018Net(patch_size=patch).eval()
    with torch.no_grad():
        out = net(torch.rand(3, 1, patch, patch))
    assert out.shape == (3, 1, patch, patch)


@pytest.mark.parametrize("patch", [8, 20, 33])
def test_yang2018_rejects_bad_patch_size(patch: int) -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        Yang2018Net(patch_size=patch)


def test_yang2018_rejects_wrong_input_size() -> None:
    with pytest.raises(ValueError, match="expects patches of 32x32"):
        Yang2018Net()(torch.rand(1, 1, 16, 16))


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (17, 31), (48, 48), (64, 40)])
def test_unet_accepts_any_size_and_starts_as_identity(shape: tuple) -> None:
    net = UNet(base_channels=4, depth=2).eval()
    x = torch.rand(2, 1, *shape)
    with torch.no_grad():
        out = net(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, x)  # zero-initialised head: residual identity


def test_unet_default_is_small() -> None:
    assert _n_params(build_network("unet")) < 200_000


def test_build_network_validates_arch_and_options() -> None:
    assert set(ARCHS) == {"unet", "yang2018"}
    with pytest.raises(ValueError, match="unknown arch 'resnet'"):
        build_network("resnet")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['width'\]"):
        build_network("unet", {"width": 3})
