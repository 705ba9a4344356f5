import importlib.util
import json
import os.path as osp
import sys

import pytest

BENCH = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'benchmarks')


def load(name):
    sys.path.insert(0, BENCH)
    spec = importlib.util.spec_from_file_location(name, osp.join(BENCH, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def metrics(h1):
    return {'hits@1': h1, 'hits@5': h1 + 0.1, 'hits@10': h1 + 0.2, 'mrr': h1 + 0.05}


def record(entry, model, run, h1, semi=False, **config):
    history = [dict(round=0, epochs=20, train_seconds=100.0,
                    **{'src->tgt': metrics(h1), 'tgt->src': metrics(h1 - 0.01)})]
    if semi:
        history.append(dict(round=1, epochs=5, train_seconds=30.0,
                            **{'src->tgt': metrics(h1 + 0.08),
                               'tgt->src': metrics(h1 + 0.07)}))
    last = history[-1]
    return dict(entry=entry, model=model, run=run, seed=0, history=history,
                config=dict(config, semi=semi), timings=dict(train=130.0 if semi else 100.0),
                peak_memory_gib=1.5, extra_metrics={'csls': {
                    'src->tgt': metrics(h1 + 0.03), 'tgt->src': metrics(h1)}},
                **{'src->tgt': last['src->tgt'], 'tgt->src': last['tgt->src']})


def fake_train(monkeypatch, run, tmp_path, result):
    r"""Makes ``run``'s subprocess a ``train`` command that writes ``result``
    (with its own command line) into its ``--out`` folder; returns the list
    of commands it is called with."""
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        out = tmp_path / cmd[cmd.index('--out') + 1]
        out.mkdir(parents=True, exist_ok=True)
        (out / 'results.json').write_text(json.dumps(
            dict(result, command=' '.join(cmd[1:]))))

    monkeypatch.setattr(run.subprocess, 'run', fake_run)
    return calls


def test_table_rows_labels_paper_numbers_and_deviations():
    run = load('run')
    records = [record('dual-amn:semi', 'dual-amn', 'dbp15k/zh_en', 0.72,
                      semi=True, channels=128, lr=0.005),
               record('gcn-align', 'gcn-align', 'dbp15k/zh_en', 0.38,
                      epochs=500, lr=20.0),
               record('rdgcn:learned', 'rdgcn', 'srprs/en_fr', 0.30)]
    lines = run.table(records, 'python benchmarks/run.py').splitlines()
    body = [line.split(' | ') for line in lines[4:]]
    assert [b[0] for b in body] == ['| dual-amn', '| dual-amn (semi)',
                                    '| gcn-align', '| rdgcn (learned)']
    assert body[0][4] == '0.720' and body[1][4] == '0.800'
    assert body[0][9] == '0.731' and body[1][9] == '-'  # paper: basic only
    assert body[2][9] == '0.413' and body[3][9] == '-'
    assert body[2][11] == 'epochs=500' and body[0][11] == '-'
    # each paper figure beside ours in its direction: Dual-AMN's official
    # evaluation ranks KG2 against KG1 (tgt->src), GCN-Align's KG1 (src->tgt)
    assert body[0][10] == '0.710 (tgt->src)' and body[2][10] == '0.380 (src->tgt)'
    assert body[3][10] == '-'
    # rows after bootstrapping say which entities the rounds pooled
    assert [b[3] for b in body] == ['-', 'transductive', '-', '-']
    inductive = record('dual-amn:semi', 'dual-amn', 'dbp15k/zh_en', 0.72,
                       semi=True, bootstrap='inductive')
    assert run.table([inductive], '').splitlines()[-1].split(' | ')[3] == 'inductive'
    # a run evaluated several times without bootstrapping: one final row
    multi = record('gcn-align', 'gcn-align', 'dbp15k/ja_en', 0.3, semi=True)
    multi['config']['semi'] = False
    assert len(run.table([multi], '').splitlines()) == 5
    assert body[2][8] == '0.410'  # CSLS extra column
    assert body[1][12] == '130' and body[0][13] == '5.00'


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip('matplotlib')
    run = load('run')
    records = [record('dual-amn', 'dual-amn', 'dbp15k/zh_en', 0.72),
               record('gcn-align', 'gcn-align', 'dbp15k/ja_en', 0.38)]
    path = tmp_path / 'plot.png'
    assert run.plot(records, str(path))
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_every_entry_has_a_model_in_the_registry():
    from torch_geometric_ea.train import model_names, get_model
    configs = load('configs')
    for entry, spec in configs.ENTRIES.items():
        assert spec['model'] in model_names(), entry
        fields = get_model(spec['model']).config_class().__dict__
        for key in configs.PAPER_CONFIG.get(spec['model'], {}):
            assert key in fields, (entry, key)


def test_options_keep_what_decides_a_result():
    run = load('run')
    a = run.options('/x/__main__.py train --model rdgcn --dataset dbp15k --pair zh_en '
                    '--json --out runs/a --set epochs=100 --set lr=0.1'.split())
    b = run.options(['python', '-m', 'torch_geometric_ea', 'train', '--model', 'rdgcn',
                     '--dataset', 'dbp15k', '--pair', 'zh_en', '--seed', '0', '--out',
                     'runs/b', '--threads', '1', '--set', 'lr=0.1', '--set', 'epochs=100'])
    assert a == b
    assert a['--set'] == ['epochs=100', 'lr=0.1'] and '--out' not in a
    c = run.options('x train --model rdgcn --semi --seed 1'.split())
    assert c == {'--model': ['rdgcn'], '--semi': [], '--seed': ['1']}


def test_reuse_reads_only_runs_with_the_same_options(tmp_path, monkeypatch):
    run = load('run')
    calls = fake_train(monkeypatch, run, tmp_path,
                       record('gcn-align', 'gcn-align', 'srprs/en_fr', 0.3))
    root = str(tmp_path / 'harness')
    first = run.run_one('gcn-align', 'srprs/en_fr', 0, [], root, True, False)
    assert len(calls) == 1 and first['entry'] == 'gcn-align'
    run.run_one('gcn-align', 'srprs/en_fr', 0, ['--threads', '1'], root, True, False)
    assert len(calls) == 1  # same options: read, not run
    run.run_one('gcn-align', 'srprs/en_fr', 0, ['--set', 'epochs=5'], root, True, False)
    assert len(calls) == 2  # other options: run again
    run.run_one('gcn-align', 'srprs/en_fr', 0, ['--set', 'epochs=5'], root, False, False)
    assert len(calls) == 3  # without reuse: always run
    assert run.run_one('gcn-align', 'srprs/en_fr', 0, ['--set', 'epochs=7'], root,
                       True, False, run_missing=False) is None
    assert len(calls) == 3  # --finished: never run


def test_reuse_resumes_an_interrupted_run(tmp_path, monkeypatch):
    run = load('run')
    calls = fake_train(monkeypatch, run, tmp_path,
                       record('gcn-align', 'gcn-align', 'srprs/en_fr', 0.3))
    root = tmp_path / 'harness'
    folder = root / 'gcn-align_srprs_en_fr_seed0'
    folder.mkdir(parents=True)
    (folder / 'checkpoint.pt').write_bytes(b'')
    run.run_one('gcn-align', 'srprs/en_fr', 0, [], str(root), False, False)
    assert '--resume' not in calls[-1]  # without --reuse: a fresh run
    run.run_one('gcn-align', 'srprs/en_fr', 0, ['--set', 'epochs=5'], str(root), True,
                False)
    assert calls[-1][-2:] == ['--resume', str(folder)]
    assert '--resume' not in run.options(calls[-1])  # the same run's record


def test_synthetic_runs_pass_their_size(tmp_path, monkeypatch):
    run = load('run')
    calls = fake_train(monkeypatch, run, tmp_path,
                       record('dual-amn', 'dual-amn', 'synthetic/5000', 0.5))
    run.run_one('dual-amn', 'synthetic/5000', 0, [], str(tmp_path / 'h'), False, False)
    cmd = calls[0]
    assert cmd[cmd.index('--dataset') + 1] == 'synthetic'
    assert cmd[cmd.index('--num-entities') + 1] == '5000' and '--pair' not in cmd


def test_docs_option_rewrites_a_pages_table_in_place(tmp_path):
    run, tables = load('run'), load('docs_tables')
    path = tmp_path / 'scale.rst'
    original = open(tables.page('scale'), encoding='utf-8').read()
    path.write_text(original, encoding='utf-8')
    caption = tables.read_block('scale', str(path)).caption
    records = [record('dual-amn:scale', 'dual-amn', 'synthetic/5000', 0.5,
                      batch_size=8192, candidates='random'),
               record('gcn-align', 'gcn-align', 'synthetic/5000', 0.25)]
    command = run.docs_command(['--models', 'dual-amn:scale', 'gcn-align', '--runs',
                                'synthetic/5000', '--finished', '--phases', '--docs',
                                'scale'])
    assert command == ('python benchmarks/run.py --models dual-amn:scale gcn-align '
                       '--runs synthetic/5000 --finished --phases')
    missing = ['lightea:scale on synthetic/5000 (seed 0)']
    run.write_docs(records, command, 'scale', phases=True, missing=missing,
                   path=str(path))
    text = path.read_text(encoding='utf-8')
    header, rows = run.cells(records, phases=True)
    # the caption stays, the header and the rows are the harness's, as
    # csv-table lines (cells quoted: a comma inside one stays in it; a
    # lone '-' escaped, else it would be a bullet list)
    assert f'.. csv-table:: {caption}\n' in text
    assert '   :header: "model","data","seed","bootstrapping","Hits@1",' in text
    assert header[-5:] == ['load s', 'prepare s', 'evaluate s', 'whole run s', 'record']
    assert ('   "dual-amn (scale)","synthetic/5000","0","\\-","0.500",' in text
            and '"batch_size=8192, candidates=random"' in text)
    assert f'Command: ``{command}``' in text and 'Not run yet: lightea:scale' in text
    block = tables.read_block('scale', str(path))
    assert (block.caption, block.header, block.rows) == (caption, header, rows)
    assert block.command == command
    assert block.notes == ['Not run yet: ' + missing[0] + '.']
    # only the block changed
    begin, end = '.. scale:begin\n', '.. scale:end\n'
    assert text.split(begin)[0] == original.split(begin)[0]
    assert text.split(end)[1] == original.split(end)[1]
    # the same rows again: the page byte for byte as it was
    run.write_docs(records, command, 'scale', phases=True, missing=missing,
                   path=str(path))
    assert path.read_text(encoding='utf-8') == text
    with pytest.raises(SystemExit, match='has no .. results:begin'):
        run.write_docs(records, command, 'results', path=str(path))


def test_docs_tables_are_valid_restructuredtext():
    docutils = pytest.importorskip('docutils.core')
    tables = load('docs_tables')
    block = tables.Block('A caption', [':widths: auto'], ['a', 'b, c', 'd'],
                         [['-', 'x, y', 'say "hi"'], ['* z', 'back\\slash', '0.5']],
                         'python benchmarks/run.py --finished', ['Not run yet: x.'])
    text = tables.render_block(block)
    assert tables.parse_block(text) == block
    tree = docutils.publish_doctree(text, settings_overrides=dict(
        report_level=2, halt_level=2))
    entries = [[e.astext() for e in row.findall(lambda n: n.tagname == 'entry')]
               for row in tree.findall(lambda n: n.tagname == 'row')]
    assert entries == [block.header] + block.rows
    assert not list(tree.findall(lambda n: n.tagname == 'bullet_list'))


def test_memory_docs_option_writes_its_rows(tmp_path):
    memory, tables = load('memory'), load('docs_tables')
    path = tmp_path / 'memory.rst'
    path.write_text(open(tables.page('memory'), encoding='utf-8').read(),
                    encoding='utf-8')
    rows = [['dual-amn', 'synthetic 5,000/side', 'candidates=random, batch_size=512',
             'kept', '1.00 (train)', '0.90', '1.11']]
    tables.write_block('memory', memory.HEADER, rows, path=str(path))
    text = path.read_text(encoding='utf-8')
    block = tables.read_block('memory', str(path))
    assert block.caption == 'Memory: estimated against measured peaks'
    assert block.header == memory.HEADER and block.rows == rows
    assert block.command is None
    assert ('   "dual-amn","synthetic 5,000/side","candidates=random, batch_size=512",'
            '"kept","1.00 (train)","0.90","1.11"\n') in text
    tables.write_block('memory', memory.HEADER, rows, path=str(path))
    assert path.read_text(encoding='utf-8') == text


@pytest.mark.parametrize('block', ['results', 'bootstrapping', 'literal', 'candidates',
                                   'scale', 'memory', 'lightea', 'lightea-names',
                                   'names-only', 'precision'])
def test_docs_pages_tables_read_and_write_back_unchanged(block, tmp_path):
    tables = load('docs_tables')
    assert set(tables.PAGES) == {'results', 'bootstrapping', 'literal', 'candidates',
                                 'scale', 'memory', 'lightea', 'lightea-names',
                                 'names-only', 'precision'}
    original = open(tables.page(block), 'rb').read()
    path = tmp_path / 'page.rst'
    path.write_bytes(original)
    found = tables.read_block(block, str(path))
    assert found.rows and all(len(row) == len(found.header) for row in found.rows)
    tables.write_block(block, found.header, found.rows, found.command, found.notes,
                       path=str(path))
    assert path.read_bytes() == original


def test_readme_option_is_a_deprecated_docs_option(tmp_path, monkeypatch, capsys):
    run = load('run')
    written = []
    monkeypatch.setattr(run, 'write_docs', lambda *args, **kwargs: written.append(args))
    monkeypatch.setattr(run, 'plot', lambda *args: False)
    kept = tmp_path / 'records'
    kept.mkdir()
    (kept / 'x.json').write_text(json.dumps(record('gcn-align', 'gcn-align',
                                                   'dbp15k/zh_en', 0.4)))
    common = ['--collect', '--records', str(kept), '--out', str(tmp_path / 'out')]
    assert run.main(common + ['--readme', 'candidates']) == 0
    assert '--readme is deprecated' in capsys.readouterr().err
    assert run.main(common + ['--docs', 'candidates']) == 0
    assert run.main(common + ['--docs']) == 0
    assert [args[2] for args in written] == ['candidates', 'candidates', 'results']
    assert {args[1] for args in written} == {
        'python benchmarks/run.py ' + ' '.join(common)}
    with pytest.raises(SystemExit):
        run.main(common + ['--docs', 'memory'])  # memory.py's block


@pytest.mark.real_data
@pytest.mark.slow
def test_quick_mode_runs_every_model_on_real_data(mirror, tmp_path):
    run = load('run')
    out = tmp_path / 'harness'
    assert run.main(['--quick', '--out', str(out)]) == 0
    records = json.loads((out / 'records.json').read_text())
    configs = load('configs')
    assert [r['entry'] for r in records] == configs.TABLE
    for r in records:
        assert r['run'] == 'dbp15k/zh_en'
        assert 0 <= r['src->tgt']['hits@1'] <= 1 and r['peak_memory_gib'] > 0
    table = (out / 'table.md').read_text()
    assert table.count('dbp15k/zh_en') == len(records) + 1  # + semi row


def test_levers_time_each_setting_in_its_own_process(capsys):
    levers = load('levers')
    rows = levers.main(['--only', '0', '3', '--steps', '1', '--dataset', 'synthetic',
                        '--num-entities', '300', '--threads', '1'])
    assert [r['setting'] for r in rows] == [levers.LEVERS[0][0], levers.LEVERS[3][0]]
    assert rows[1]['args']['candidates'] == 'random'
    assert all(r['median_step'] > 0 and r['peak_memory_gib'] > 0 for r in rows)
    assert len(capsys.readouterr().out.splitlines()) == 2 + 2  # header, rule, rows


def test_transcribed_records_are_tabulated_marked_and_run_again(tmp_path, monkeypatch):
    run = load('run')
    kept = tmp_path / 'records'
    kept.mkdir()
    row = {'variant': '', 'hits@1': 0.391, 'hits@10': 0.709, 'mrr': 0.5,
           'hits@1 tgt->src': 0.358, 'csls hits@1': 0.41, 'train s': 365.0,
           's / epoch': 0.18, 'peak GiB': 0.79, 'threads': 2,
           'not as in the paper': '-'}
    name = 'gcn-align_dbp15k_zh_en_seed0.json'
    (kept / name).write_text(json.dumps(dict(
        entry='gcn-align', run='dbp15k/zh_en', seed=0, rows=[row],
        transcribed='README at abc1234')))
    calls = fake_train(monkeypatch, run, tmp_path,
                       record('gcn-align', 'gcn-align', 'dbp15k/zh_en', 0.4))
    found = run.run_one('gcn-align', 'dbp15k/zh_en', 0, [], str(tmp_path / 'h'),
                        True, False, run_missing=False, records=str(kept))
    assert found['transcribed'] == 'README at abc1234' and not calls
    line = run.table([found], '').splitlines()[-1].split(' | ')
    assert line[3] == '-'  # a basic row has no bootstrapping
    assert line[4:6] == ['0.391', '0.709'] and line[9] == '0.413'
    assert line[10] == '0.391 (src->tgt)'
    assert line[12:16] == ['365', '0.18', '0.79', '2']
    assert line[-1] == 'README at abc1234 |'
    # --reuse runs a transcribed record again and keeps the real one instead
    fresh = run.run_one('gcn-align', 'dbp15k/zh_en', 0, [], str(tmp_path / 'h'),
                        True, False, records=str(kept))
    assert len(calls) == 1 and 'transcribed' not in fresh
    assert json.loads((kept / name).read_text())['src->tgt']['hits@1'] == 0.4
    assert run.table([fresh], '').splitlines()[-1].endswith('| results.json |')
    assert [r['entry'] for r in run.collect(str(kept))] == ['gcn-align']


def test_scale_entry_passes_its_settings_per_size_and_tabulates_phases(tmp_path, monkeypatch):
    run = load('run')
    result = record('dual-amn:scale', 'dual-amn', 'synthetic/1000000', 0.5)
    result['timings'] = dict(load=10.0, prepare=60.0, train=900.0, evaluate=40.0,
                             total=1001.0)
    calls = fake_train(monkeypatch, run, tmp_path, result)
    found = run.run_one('dual-amn:scale', 'synthetic/1000000', 0, [],
                        str(tmp_path / 'h'), False, False)
    cmd = ' '.join(calls[0])
    # the 1M pair's size picks channels, batch and ranking (train/scale.py)
    assert '--epochs 1' in cmd and '--set candidates=random' in cmd
    for option in ('channels', 'eval_links', '--batch-size'):
        assert option not in cmd
    lines = run.table([found], '', phases=True).splitlines()
    assert lines[2].endswith('| evaluate s | whole run s | record |')
    assert lines[2].count('|') == lines[3].count('|') == lines[4].count('|')
    assert lines[4].split(' | ')[-5:-1] == ['10', '60', '40', '1011']


def test_literal_run_tabulates_each_channel_and_the_papers_lit_number():
    run = load('run')
    lit = record('dual-amn:lit', 'dual-amn', 'dbp15k/fr_en', 0.90, semi=True,
                 literal=True)
    lit['extra_metrics'] = {'names': {'src->tgt': metrics(0.88), 'tgt->src': metrics(0.87)},
                            'structure': {'src->tgt': metrics(0.75),
                                          'tgt->src': metrics(0.74)}}
    lines = run.table([lit], '').splitlines()
    body = [line.split(' | ') for line in lines[4:]]
    # A record from before runs said which names: the URIs', offline.
    assert [b[0] for b in body] == ['| names only (uri, offline encoder)',
                                    '| dual-amn (lit, structure only; uri names)',
                                    '| dual-amn (lit, basic; uri names)',
                                    '| dual-amn (lit, semi; uri names)']
    assert [b[4] for b in body] == ['0.880', '0.750', '0.900', '0.980']
    assert [b[9] for b in body] == ['-', '-', '-', '0.954']
    assert [b[3] for b in body] == ['-', 'transductive', '-', 'transductive']
    assert body[3][10] == '0.970 (tgt->src)'
    lit['protocol'] = dict(bootstrapping='transductive', names=dict(
        source='translated', encoder='glove-6b-50d+bigrams'))
    body = [line.split(' | ') for line in run.table([lit], '').splitlines()[4:]]
    assert [b[0] for b in body] == ['| names only (translated, glove-6b-50d+bigrams)',
                                    '| dual-amn (lit, structure only; translated names)',
                                    '| dual-amn (lit, basic; translated names)',
                                    '| dual-amn (lit, semi; translated names)']
    lightea = record('lightea:names-iterative', 'lightea', 'dbp15k/zh_en', 0.95,
                     literal=True)  # a name view without channel rows
    lightea['protocol'] = lit['protocol']
    (row,) = run.table([lightea], '').splitlines()[4:]
    assert row.startswith('| lightea (names-iterative; translated names) |')
    assert row.split(' | ')[9] == '0.952'
    rdgcn = record('rdgcn:names', 'rdgcn', 'dbp15k/zh_en', 0.7)
    rdgcn['config']['features'] = 'names'
    assert run.table([rdgcn], '').splitlines()[4].startswith(
        '| rdgcn (names; uri names) |')


def test_a_pair_exported_as_tsv_reads_back_as_the_same_pair(tmp_path):
    from torch_geometric_ea.data import from_tsv, synthetic_pair
    from torch_geometric_ea.data.pair import LINK
    data = synthetic_pair(80, num_relations=5, seed=0)
    load('export_tsv').export(data, str(tmp_path))
    again = from_tsv(*(str(tmp_path / f'{f}.tsv') for f in ('kg1', 'kg2')),
                     train_links=str(tmp_path / 'seeds.tsv'),
                     test_links=str(tmp_path / 'test.tsv'))
    for side in ('src', 'tgt'):
        assert again[side].num_nodes <= data[side].num_nodes  # isolated ones go
    for key in (('src', 'triple', 'src'), ('tgt', 'triple', 'tgt')):
        assert again[key].edge_index.size(1) == data[key].edge_index.size(1)
    for mask in ('train_mask', 'test_mask'):
        assert int(again[LINK][mask].sum()) == int(data[LINK][mask].sum())
