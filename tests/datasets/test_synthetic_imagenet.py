"""The synthetic classification set: deterministic, ImageNet layout, careful with --out."""
from __future__ import annotations

import os

import pytest

from lip_det.classification import find_image_folders
from lip_det.datasets import CLASSES, SyntheticImageNetConfig, dataset_digest
from lip_det.datasets import generate_synthetic_imagenet as generate
from lip_det.datasets.synthetic_coco import ForeignContentError, SyntheticParamError

from ..tools.tool_loader import load_tool

SMALL = SyntheticImageNetConfig(num_train_per_class=2, num_val_per_class=1, size=32)


def test_layout_and_determinism(tmp_path):
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    assert generate(a, SMALL)['action'] == 'generated'
    generate(b, SMALL)
    assert dataset_digest(a) == dataset_digest(b)
    classes, samples = find_image_folders(os.path.join(a, 'train'))
    assert classes == sorted(CLASSES) and len(samples) == 2 * len(CLASSES)
    assert generate(a, SMALL)['action'] == 'reused'
    other = SyntheticImageNetConfig(num_train_per_class=2, num_val_per_class=1, size=32, seed=1)
    generate(str(tmp_path / 'c'), other)
    assert dataset_digest(str(tmp_path / 'c')) != dataset_digest(a)


def test_refuses_foreign_content_and_repairs_its_own(tmp_path):
    out = str(tmp_path / 'set')
    generate(out, SMALL)
    png = os.path.join(out, 'train', 'disc', '000000.png')
    with open(png, 'ab') as f:
        f.write(b'x')
    summary = generate(out, SMALL)
    assert summary['action'] == 'repaired' and 'disc/000000.png' in summary['damage']
    bigger = SyntheticImageNetConfig(num_train_per_class=3, num_val_per_class=1, size=32)
    with pytest.raises(FileExistsError, match='other parameters'):
        generate(out, bigger)
    (tmp_path / 'set' / 'train' / 'mine.txt').write_text('user data')
    with pytest.raises(ForeignContentError, match='mine.txt'):
        generate(out, bigger, force=True)
    assert (tmp_path / 'set' / 'train' / 'mine.txt').read_text() == 'user data'
    (tmp_path / 'foreign').mkdir()
    (tmp_path / 'foreign' / 'x').write_text('x')
    with pytest.raises(ForeignContentError):
        generate(str(tmp_path / 'foreign'), SMALL)


@pytest.mark.parametrize('field,value', [('size', 16), ('size', 4096), ('num_train_per_class', 0),
                                         ('num_val_per_class', 10**9), ('seed', 2**64),
                                         ('noise_std', float('nan')), ('clutter', -1)])
def test_bounded_arguments(field, value):
    with pytest.raises(SyntheticParamError, match=field):
        SyntheticImageNetConfig(**{field: value}).validate()


def test_cli(tmp_path, capsys):
    tool = load_tool('make_synthetic_imagenet')
    out = str(tmp_path / 's')
    args = ['--out', out, '--num-train-per-class', '1', '--num-val-per-class', '1', '--size', '32']
    assert tool.main(args) == 0 and 'generated' in capsys.readouterr().out
    assert tool.main(args[:-1] + ['33']) == 1  # other parameters, no --force
    assert tool.main(['--out', out, '--size', '9']) == 2
    assert 'argument --size' in capsys.readouterr().err
