r"""What a user sees when a command meets bad input: one ``error:`` line,
a non-zero exit, no traceback, nothing trained or written first; and JSON
that is always JSON."""
import json
import subprocess
import sys
import unicodedata

import pytest
import torch

from torch_geometric_ea.cli import main

from test_align import EXPECTED, SEEDS, SMALL, kgs  # noqa: F401 (fixture)

TRAIN = ['--set', 'channels=16', '--set', 'num_proxies=4', '--epochs', '2']


def align(kgs, *extra, out='out'):  # noqa: F811
    return main(['align', '--triples1', str(kgs / 'kg1.tsv'), '--triples2',
                 str(kgs / 'kg2.tsv'), '--seeds', str(kgs / 'seeds.tsv'),
                 '--out', str(kgs / out)] + SMALL + list(extra))


@pytest.fixture
def checkpoint(kgs, capsys):  # noqa: F811
    assert align(kgs) == 0
    capsys.readouterr()
    return kgs / 'out' / 'model.pt'


def stop(argv) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    message = str(e.value)
    assert message.startswith('error: ') and '\n' not in message
    return message


@pytest.mark.parametrize('command', ['evaluate', 'analyze'])
def test_evaluate_and_analyze_take_the_triples_they_were_trained_on(
        kgs, checkpoint, capsys, command):  # noqa: F811
    assert main([command, '--checkpoint', str(checkpoint), '--triples1',
                 str(kgs / 'kg1.tsv'), '--triples2', str(kgs / 'kg2.tsv'),
                 '--json']) == 0
    assert json.loads(capsys.readouterr().out)


@pytest.mark.parametrize('content', [b'', b'not a checkpoint at all\n', 'truncated'])
@pytest.mark.parametrize('command', ['align', 'evaluate', 'analyze'])
def test_bad_checkpoints_end_with_one_line(kgs, checkpoint, content, command,
                                           tmp_path):  # noqa: F811
    bad = tmp_path / 'bad.pt'
    bad.write_bytes(checkpoint.read_bytes()[:2000] if content == 'truncated'
                    else content)
    argv = [command, '--checkpoint', str(bad)]
    if command == 'align':
        argv += ['--out', str(tmp_path / 'again')]
    message = stop(argv)
    assert str(bad) in message and 'weights_only=False' not in message
    assert not (tmp_path / 'again').exists()


def test_a_checkpoint_of_another_pair_is_refused(kgs, checkpoint, tmp_path):  # noqa: F811
    # the same entity and relation counts, the triples of KG1 reversed
    other = tmp_path / 'other1.tsv'
    rows = [line.split('\t') for line in (kgs / 'kg1.tsv').read_text(
        encoding='utf-8').splitlines()]
    other.write_text(''.join(f'{t}\t{r}\t{h}\n' for h, r, t in rows), encoding='utf-8')
    message = stop(['evaluate', '--checkpoint', str(checkpoint), '--triples1',
                    str(other), '--triples2', str(kgs / 'kg2.tsv')])
    assert 'trained on another KG pair (same sizes' in message
    # and of another size: one triple fewer in KG2, one relation fewer maybe
    smaller = tmp_path / 'smaller2.tsv'
    lines = (kgs / 'kg2.tsv').read_text(encoding='utf-8').splitlines()
    smaller.write_text('\n'.join(lines[:len(lines) // 2]) + '\n', encoding='utf-8')
    with pytest.raises(SystemExit) as e:
        main(['evaluate', '--checkpoint', str(checkpoint), '--triples1',
              str(kgs / 'kg1.tsv'), '--triples2', str(smaller)])
    assert str(e.value).startswith('error: ')


@pytest.mark.parametrize('command', ['train', 'align'])
def test_out_naming_a_file_stops_before_training(kgs, command, capsys):  # noqa: F811
    (kgs / 'taken').write_text('mine')
    argv = (['train', '--num-entities', '60', '--out', str(kgs / 'taken')] + TRAIN
            if command == 'train' else
            ['align', '--triples1', str(kgs / 'kg1.tsv'), '--triples2',
             str(kgs / 'kg2.tsv'), '--seeds', str(kgs / 'seeds.tsv'),
             '--out', str(kgs / 'taken')])
    assert 'names a file' in stop(argv)
    assert (kgs / 'taken').read_text() == 'mine'
    assert 'round' not in capsys.readouterr().err  # nothing was trained


def test_align_json_without_test_links_is_strict_json(kgs, capsys):  # noqa: F811
    assert align(kgs) == 0
    text = capsys.readouterr().out
    summary = json.loads(text, parse_constant=lambda c: pytest.fail(f'{c} in JSON'))
    assert summary['metrics']['src->tgt']['hits@1'] is None


def test_seeds_in_nfd_match_a_kg_in_nfc(kgs, capsys):  # noqa: F811
    kg1 = (kgs / 'kg1.tsv').read_text(encoding='utf-8')
    name = SEEDS[0][0]
    accented = name + '_São'  # precomposed (NFC) in the KG
    (kgs / 'kg1.tsv').write_text(kg1.replace(name, accented), encoding='utf-8')
    seeds = (kgs / 'seeds.tsv').read_text(encoding='utf-8').replace(
        name, unicodedata.normalize('NFD', accented))
    assert unicodedata.normalize('NFD', accented) != accented
    (kgs / 'seeds.tsv').write_text(seeds, encoding='utf-8')
    assert align(kgs) == 0


def test_greedy_says_when_sources_share_a_target(kgs, capsys):  # noqa: F811
    assert main(['align', '--triples1', str(kgs / 'kg1.tsv'), '--triples2',
                 str(kgs / 'kg2.tsv'), '--seeds', str(kgs / 'seeds.tsv'),
                 '--out', str(kgs / 'out'), '--epochs', '1', '--set', 'channels=4',
                 '--set', 'num_proxies=2', '--set', 'lr=0']) == 0
    text = capsys.readouterr().out
    shared = [line for line in text.splitlines() if 'more than one source' in line]
    # an untrained model (lr 0) scores near-randomly: some targets are shared
    assert len(shared) == 1 and '--decoder hungarian' in shared[0]


def test_a_garbage_checkpoint_prints_no_traceback(tmp_path):
    bad = tmp_path / 'model.pt'
    bad.write_bytes(b'\x80\x04garbage')
    run = subprocess.run([sys.executable, '-m', 'torch_geometric_ea', 'evaluate',
                          '--checkpoint', str(bad)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode != 0
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith('error: ') and 'Traceback' not in run.stderr


def test_checkpoints_load_with_weights_only(checkpoint):
    state = torch.load(checkpoint, weights_only=True)
    assert len(state['pair_fingerprint']) == 64


def test_align_never_pools_the_links_it_evaluates_on(kgs, capsys):  # noqa: F811
    (kgs / 'held_out.tsv').write_text(''.join(f'{a}\t{b}\n' for a, b in EXPECTED[:4]),
                                      encoding='utf-8')
    assert align(kgs, '--test-links', str(kgs / 'held_out.tsv'), '--semi',
                 '--set', 'semi_rounds=1', '--set', 'semi_epochs=1') == 0
    capsys.readouterr()
    state = torch.load(kgs / 'out' / 'model.pt', weights_only=True)
    assert state['config']['bootstrap'] == 'inductive'


def test_align_with_lightea_needs_no_training_and_reloads_the_same(kgs, capsys):  # noqa: F811,E501
    small = ['--set', 'ent_dim=64', '--set', 'rel_dim=16', '--set', 'mini_dim=4',
             '--set', 'top_k=20']
    base = ['align', '--model', 'lightea', '--triples1', str(kgs / 'kg1.tsv'),
            '--triples2', str(kgs / 'kg2.tsv'), '--seeds', str(kgs / 'seeds.tsv'),
            '--json', '-k', '3']
    assert main(base + ['--out', str(kgs / 'a')] + small) == 0
    first = (kgs / 'a' / 'candidates.tsv').read_text(encoding='utf-8')
    assert main(['align', '--checkpoint', str(kgs / 'a' / 'model.pt'), '--json',
                 '-k', '3', '--out', str(kgs / 'b')]) == 0
    assert (kgs / 'b' / 'candidates.tsv').read_text(encoding='utf-8') == first
    capsys.readouterr()
