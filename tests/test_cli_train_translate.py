"""``flowbridge train`` and ``flowbridge translate`` through ``flowbridge.cli.main``."""

from __future__ import annotations

import shlex
import signal
import sys
from types import SimpleNamespace

import pytest
import torch
from test_training_support import COLOURS, Words, plugin  # noqa: F401
from toy_domains import VectorDomain

from flowbridge.checkpoint import load_checkpoint
from flowbridge.cli import main
from flowbridge.training import Trainer

pytestmark = pytest.mark.usefixtures("plugin")

WORDS_TOML = """
[data]
dataset = "toy-words"
[domains.a]
name = "words"
[domains.b]
name = "vector"
[model]
shared_features = 3
shared_steps = 2
shared_hidden = 16
residual_steps = 2
residual_hidden = 16
[train]
steps = 3
batch_size = 8
log_every = 1
"""


@pytest.fixture
def run_toml(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(WORDS_TOML, encoding="utf-8")
    return path


@pytest.fixture
def checkpoint(tmp_path, run_toml):
    assert main(["train", str(run_toml), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    return tmp_path / "run" / "checkpoint.pt"


def test_train_stops_when_its_time_is_up(tmp_path, run_toml, capsys):
    # Any step takes longer than a microsecond: the budget ends the run after its first.
    argv = ["train", str(run_toml), "--out", str(tmp_path / "run"), "--no-progress"]
    assert main([*argv, "--steps", "50", "--max-seconds", "1e-6"]) == 0
    out = capsys.readouterr().out
    assert "trained 1 step in" in out
    # It says the budget, not the steps, ended it, and how to go on.
    stopped = "stopped by train.max_seconds (1e-06 s) at step 1 of train.steps (50); continue "
    assert f"{stopped}with: flowbridge train {tmp_path / 'run' / 'config.json'} --resume" in out
    assert "(which trains for at most 1e-06 s more: add --max-seconds 0 for no limit" in out
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 1
    # The continuing run keeps the budget of its config.json, unless 0 lifts it.
    resume = ["train", str(tmp_path / "run" / "config.json"), "--resume", "--no-progress"]
    assert main([*resume, "--out", str(tmp_path / "run")]) == 0
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 2
    capsys.readouterr()
    assert main([*resume, "--out", str(tmp_path / "run"), "--max-seconds", "0"]) == 0
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 50
    assert "stopped by" not in capsys.readouterr().out
    for bad, message in (("-3", "must be >= 0"), ("inf", "must be a finite"), ("nan", ">= 0")):
        with pytest.raises(SystemExit):
            main([*argv, "--max-seconds", bad])
        assert message in capsys.readouterr().err


def test_train_takes_a_thread_count(tmp_path, run_toml, capsys, keep_threads):
    torch.set_num_threads(2)
    argv = ["train", str(run_toml), "--out", str(tmp_path / "run"), "--no-progress"]
    assert main([*argv, "--steps", "1", "--threads", "1"]) == 0
    assert torch.get_num_threads() == 1
    with pytest.raises(SystemExit):
        main([*argv, "--threads", "0"])
    assert "--threads" in capsys.readouterr().err


def test_train_then_resume_with_more_steps(tmp_path, run_toml, capsys, checkpoint):
    out = capsys.readouterr().out
    assert "trained 3 steps" in out and f"checkpoint: {checkpoint}" in out
    assert load_checkpoint(checkpoint)["step"] == 3
    argv = ["train", str(run_toml), "--out", str(checkpoint.parent), "--no-progress"]
    assert main([*argv, "--resume", "--steps", "5"]) == 0
    assert load_checkpoint(checkpoint)["step"] == 5
    out = capsys.readouterr().out
    assert "trained steps 4-5 in" in out and "stopped by" not in out
    # A setting it may change is changed: said before it trains, whether meant or not.
    assert "resuming at step 3 with: train.steps (3 in the checkpoint, now 5)\n" in out
    # Starting afresh over a run is refused, not silently overwritten.
    assert main(argv) == 2
    assert "already holds a checkpoint" in capsys.readouterr().err


def test_translate_prints_text_and_writes_files(tmp_path, capsys, checkpoint):
    capsys.readouterr()
    argv = ["translate", "--checkpoint", str(checkpoint), "--samples", "3", "--seed", "1"]
    assert main([*argv, "--from", "vector", "--to", "words", "0,0,1,0", "1,0,0,0.5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[vector] 0,0,1,0" and lines[4] == "[vector] 1,0,0,0.5"
    words = [line.split(". ", 1)[1] for line in lines if line.startswith("  ")]
    assert len(words) == 6 and set(words) <= set(COLOURS)
    out = tmp_path / "vectors"
    assert main([*argv, "--from", "words", "--to", "vector", "--out", str(out), "red"]) == 0
    written = out.with_suffix(".txt")
    assert capsys.readouterr().out.strip() == f"wrote {written}"
    rows = written.read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 and len(rows[0].split(" | ")) == 3
    # The same seed gives the same samples.
    assert main([*argv, "--from", "words", "--to", "vector", "--out", str(out), "red"]) == 0
    assert written.read_text(encoding="utf-8").splitlines() == rows
    # The run directory stands for its checkpoint.
    argv[2] = str(checkpoint.parent)
    assert main([*argv, "--from", "words", "--to", "vector", "--out", str(out), "red"]) == 0
    assert written.read_text(encoding="utf-8").splitlines() == rows


def test_translate_passes_options_to_the_domains_generate(checkpoint, monkeypatch, capsys):
    seen = []

    def generate(self, decoder, shared, residual, **options):
        seen.append(options)
        return ["red"] * shared.shape[0]

    monkeypatch.setattr(Words, "generate", generate)
    argv = ["translate", "--checkpoint", str(checkpoint), "--from", "vector", "--to", "words"]
    options = ["--option", "method=beam", "--option", "beam_size=5", "--option", "p=0.5"]
    assert main([*argv, *options, "--option", 'name="5"', "0,0,1,0"]) == 0
    assert seen == [{"method": "beam", "beam_size": 5, "p": 0.5, "name": "5"}]
    capsys.readouterr()
    for bad, message in [
        (["--option", "beam_size"], "expected KEY=VALUE with KEY a Python name, got 'beam_size'"),
        (["--option", "temperature=0.5"], "--option temperature: 'temperature' is an argument of"),
        (["--option", "k=1", "--option", "k=2"], "--option k is given twice"),
    ]:
        try:
            code = main([*argv, *bad, "0,0,1,0"])
        except SystemExit as exit:  # argparse's own refusal
            code = exit.code
        assert code == 2 and message in capsys.readouterr().err


def test_translate_passes_a_component_temperature_to_a_mixture_prior(tmp_path, capsys):
    mixture = tmp_path / "mixture.toml"
    mixture.write_text(
        WORDS_TOML.replace("[model]\n", "[model]\nresidual_components = 4\n"), encoding="utf-8"
    )
    assert main(["train", str(mixture), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    argv = ["translate", "--checkpoint", str(tmp_path / "run" / "checkpoint.pt"), "--samples"]
    argv += ["5", "--from", "words", "--to", "vector", "--temperature", "0.5", "red"]
    out = tmp_path / "vectors"
    rows = {}
    for tau_c in (None, "0.5", "0"):
        extra = [] if tau_c is None else ["--component-temperature", tau_c]
        assert main([*argv, *extra, "--out", str(out)]) == 0
        rows[tau_c] = out.with_suffix(".txt").read_text(encoding="utf-8")
    assert rows[None] == rows["0.5"]  # by default the weights take --temperature
    assert rows["0"] != rows[None]  # it reaches the prior: one component for every sample
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([*argv, "--component-temperature", "-1"])
    assert "must be >= 0, got -1" in capsys.readouterr().err


def test_translate_keeps_the_best_of_several_candidates(tmp_path, capsys, checkpoint):
    argv = ["translate", "--checkpoint", str(checkpoint), "--samples", "4", "--seed", "2"]
    argv += ["--from", "words", "--to", "vector", "red"]
    out = tmp_path / "vectors"
    rows = {}
    for m in ("1", "3", None):
        extra = [] if m is None else ["--candidates", m]
        assert main([*argv, *extra, "--out", str(out)]) == 0
        rows[m] = out.with_suffix(".txt").read_text(encoding="utf-8")
    assert rows["1"] == rows[None]  # one candidate: the plain draws
    assert rows["3"] != rows[None]  # it reaches the bridge: other draws are kept
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([*argv, "--candidates", "0"])
    assert "--candidates: must be >= 1, got 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "{tmp}/missing.toml"], "config file '{tmp}/missing.toml' does not exist"),
        (["train", "{toml}", "--preset", "huge"], "unknown preset 'huge'"),
        (["train", "{bad_key}"], "unknown setting 'train.stepz'"),
        (["train", "{bad_domain}"], "unknown domain 'audio'; registered: "),
        (["train", "{toml}", "--device", "tpu"], "device must be"),
        (["train", "{toml}", "--out", "{tmp}/empty", "--resume"], "nothing to resume"),
        (["train", "{toml}", "--out", "{toml}"], "train.out '{toml}' is a file, not a directory"),
        (["train", "{toml}", "--out", "{toml}/sub"], "cannot be created: '{toml}' is a file"),
        (
            ["translate", "--checkpoint", "{tmp}/none.pt", "--from", "a", "--to", "b", "x"],
            "checkpoint '{tmp}/none.pt' does not exist",
        ),
        (
            ["translate", "--checkpoint", "{toml}", "--from", "a", "--to", "b", "x"],
            "is not a torch checkpoint file",
        ),
        (
            ["translate", "--checkpoint", "{ckpt}", "--from", "audio", "--to", "words", "x"],
            "unknown domain 'audio'",
        ),
        (
            ["translate", "--checkpoint", "{ckpt}", "--from", "words", "--to", "words", "x"],
            "name the same domain",
        ),
        (
            ["translate", "--checkpoint", "{ckpt}", "--from", "words", "--to", "vector", "pink"],
            "unknown word 'pink'",
        ),
        (
            ["translate", "--checkpoint", "{ckpt}", "--from", "words", "--to", "vector", "red"]
            + ["--component-temperature", "1"],
            "this ConditionalResidualPrior has no mixture",
        ),
        (  # the toy vector domain writes its file itself, not through atomic_write
            ["translate", "--checkpoint", "{ckpt}", "--from", "vector", "--to", "words"]
            + ["0,0,1,0", "--out", "{toml}/words"],
            "cannot write '{toml}/words': '{toml}' is a file, not a directory",
        ),
    ],
)
def test_user_errors_exit_2_with_one_clear_line(
    tmp_path, run_toml, checkpoint, argv, message, capsys
):
    bad_key = tmp_path / "bad_key.toml"
    bad_key.write_text(WORDS_TOML + "stepz = 4\n", encoding="utf-8")
    bad_domain = tmp_path / "bad_domain.toml"
    bad_domain.write_text(WORDS_TOML.replace('name = "vector"', 'name = "audio"'), encoding="utf-8")
    names = {"tmp": tmp_path, "toml": run_toml, "ckpt": checkpoint}
    names |= {"bad_key": bad_key, "bad_domain": bad_domain}
    capsys.readouterr()
    assert main([arg.format(**names) for arg in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"flowbridge {argv[0]}: error: ")
    assert message.format(**names) in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_help_shows_examples(capsys):
    for command in ("train", "translate"):
        with pytest.raises(SystemExit) as exited:
            main([command, "--help"])
        assert exited.value.code == 0
        assert f"examples:\n  flowbridge {command}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("signals", "code", "message", "saved"),
    [
        ([signal.SIGTERM], 143, "SIGTERM: stopped after step 3; checkpoint", 3),
        ([signal.SIGINT], 130, "SIGINT: stopped after step 3; checkpoint", 3),
        (
            [signal.SIGINT, signal.SIGINT],
            130,
            "SIGINT: stopped at once after step 3; the last checkpoint is of step 2",
            2,
        ),
    ],
)
def test_a_signalled_cli_run_says_what_it_kept(
    tmp_path, run_toml, capsys, monkeypatch, signals, code, message, saved
):
    original = Trainer._train_step

    def signalled_in_3(self):
        values = original(self)
        if self.step == 3:
            for number in signals:
                signal.raise_signal(number)
        return values

    monkeypatch.setattr(Trainer, "_train_step", signalled_in_3)
    out = tmp_path / "signalled"
    argv = ["train", str(run_toml), "--out", str(out), "--steps", "6", "--no-progress"]
    run_toml.write_text(
        run_toml.read_text(encoding="utf-8") + "checkpoint_every = 2\n", encoding="utf-8"
    )
    assert main(argv) == code
    err = capsys.readouterr().err
    assert message in err and "--resume" in err
    assert load_checkpoint(out / "checkpoint.pt")["step"] == saved


def _printed_command(err: str) -> list[str]:
    """The argv of the command an error message tells the user to run (after "with: ")."""
    [line] = [line for line in err.splitlines() if "with: flowbridge train" in line]
    return shlex.split(line.split("with: ", 1)[1])[1:]  # without the program's name


def test_an_interrupted_cli_run_prints_the_command_that_continues_it(
    tmp_path, run_toml, capsys, monkeypatch
):
    original = Trainer._train_step

    def interrupted_at_3(self):
        if self.step == 2:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "_train_step", interrupted_at_3)
    out = tmp_path / "stopped"
    # --steps 6 overrides the configuration's 3: the command must keep it.
    assert main(["train", str(run_toml), "--out", str(out), "--steps", "6"]) == 130
    err = capsys.readouterr().err
    assert "interrupted after step 2" in err
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 2
    argv = _printed_command(err)
    assert argv == ["train", str(out / "config.json"), "--resume", "--out", str(out)]
    monkeypatch.setattr(Trainer, "_train_step", original)
    # From another folder, the run directory moved: the command still finds it.
    moved = tmp_path / "moved"
    out.rename(moved)
    argv = [arg.replace(str(out), str(moved)) for arg in argv]
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main([*argv, "--no-progress"]) == 0
    assert load_checkpoint(moved / "checkpoint.pt")["step"] == 6


def test_resuming_a_finished_run_says_so_in_one_line(checkpoint, capsys):
    capsys.readouterr()
    config = checkpoint.parent / "config.json"
    assert main(["train", str(config), "--resume", "--no-progress"]) == 0
    printed = capsys.readouterr()
    assert printed.err.startswith("flowbridge train: warning: ")
    assert "already trained 3 steps" in printed.err
    assert "UserWarning" not in printed.err and len(printed.err.splitlines()) == 1
    assert "trained" not in printed.out and "(step 3)" in printed.out


@pytest.mark.parametrize(
    ("world", "local", "launcher"),
    [
        (1, None, "flowbridge"),
        (2, "2", "torchrun --nproc_per_node 2 -m flowbridge"),
        (4, "2", "torchrun --nnodes 2 (and your rendezvous options) --nproc_per_node 2 -m"),
    ],
)
def test_the_resume_command_names_the_processes_of_a_data_parallel_run(
    monkeypatch, world, local, launcher
):
    from flowbridge.commands.train import _launcher

    if local is None:
        monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", local)
    assert _launcher(world).startswith(launcher)


def test_a_machine_error_mid_run_names_the_checkpoint_kept(tmp_path, run_toml, capsys, monkeypatch):
    original = Trainer._train_step

    def disk_full_at_5(self):
        if self.step == 4:
            raise OSError(28, "No space left on device")
        return original(self)

    monkeypatch.setattr(Trainer, "_train_step", disk_full_at_5)
    run_toml.write_text(
        run_toml.read_text(encoding="utf-8") + "checkpoint_every = 2\n", encoding="utf-8"
    )
    out = tmp_path / "full"
    assert main(["train", str(run_toml), "--out", str(out), "--steps", "6"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("flowbridge train: error: [Errno 28] No space left on device\n")
    assert f"its last checkpoint is of step 4 ({out / 'checkpoint.pt'})" in err
    assert _printed_command(err)[1:] == [str(out / "config.json"), "--resume", "--out", str(out)]


def test_a_diverging_cli_run_exits_1_naming_the_term(tmp_path, run_toml, capsys, monkeypatch):
    def nan_loss(self, output, x):
        return output.sum(dim=1) * torch.nan

    monkeypatch.setattr(VectorDomain, "reconstruction_loss", nan_loss)
    assert main(["train", str(run_toml), "--out", str(tmp_path / "nan")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("flowbridge train: error: non-finite loss at step 1:")
    assert "rec_b = nan" in err and "(sides: a = 'words', b = 'vector')" in err
    assert "nothing was trained before it: look for NaN or infinite values in the data" in err
    assert not (tmp_path / "nan" / "checkpoint.pt").exists()


@pytest.mark.parametrize("flag", ["--temperature", "--component-temperature"])
@pytest.mark.parametrize(
    "value, message",
    [("inf", "must be a finite number, got inf"), ("nan", "must be >= 0, got nan")],
)
def test_a_temperature_must_be_finite_and_not_negative(tmp_path, capsys, flag, value, message):
    # argparse refuses it before the checkpoint is read.
    argv = ["translate", "--checkpoint", str(tmp_path), "--from", "words", "--to", "vector"]
    with pytest.raises(SystemExit):
        main([*argv, flag, value, "red"])
    assert f"{flag}: {message}" in capsys.readouterr().err


def test_ctrl_c_before_the_first_checkpoint_says_there_is_nothing_to_resume(
    tmp_path, run_toml, capsys, monkeypatch
):
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_train_step", interrupted)  # in the first step
    assert main(["train", str(run_toml), "--out", str(tmp_path / "first")]) == 130
    err = capsys.readouterr().err
    assert "interrupted at step 0; no checkpoint was written, so there is nothing to resume" in err
    assert "Continue" not in err

    monkeypatch.setattr(Trainer, "__init__", interrupted)  # reading the data, say
    assert main(["train", str(run_toml), "--out", str(tmp_path / "start")]) == 130
    assert capsys.readouterr().err == "interrupted before training started; nothing was written\n"
    assert not (tmp_path / "start").exists()


def test_a_run_refused_by_another_runs_directory_says_nothing_of_that_run(
    tmp_path, run_toml, capsys
):
    from flowbridge.training.rundir import locked

    out = tmp_path / "busy"
    assert main(["train", str(run_toml), "--out", str(out), "--steps", "2"]) == 0
    capsys.readouterr()
    with locked(out):  # another run is training there
        code = main(["train", str(run_toml), "--out", str(out), "--steps", "4", "--resume"])
    err = capsys.readouterr().err
    assert code == 2 and "another run (pid" in err
    assert "the run stopped" not in err and "continue with" not in err


@pytest.mark.skipif(not hasattr(Exception, "add_note"), reason="no exception notes before 3.11")
def test_resuming_a_runs_config_from_another_folder_points_at_its_folder(
    tmp_path, run_toml, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(run_toml), "--out", "runs/first", "--steps", "2"]) == 0
    config = tmp_path / "runs" / "first" / "config.json"  # train.out = "runs/first"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["train", str(config), "--resume", "--steps", "3"]) == 2
    err = capsys.readouterr().err
    assert "nothing to resume: no checkpoint at runs/first/checkpoint.pt" in err
    assert f"the config's own folder holds a checkpoint: add --out {config.parent}" in err
    assert (
        main(["train", str(config), "--resume", "--steps", "3", "--out", str(config.parent)]) == 0
    )


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ("linux", "cd '{here}' && flowbridge train '{config}' --resume --out '{out}'"),
        # cmd reads no single quotes, and its cd would not change the drive.
        ("win32", 'pushd "{here}" && flowbridge train "{config}" --resume --out "{out}"'),
    ],
)
def test_the_resume_command_is_quoted_for_the_shell_of_the_platform(
    tmp_path, monkeypatch, platform, expected
):
    from flowbridge.commands.train import _resume_command

    tmp_path = tmp_path.resolve()  # as the command names them (macOS: /private/var/...)
    here, out = tmp_path / "R&D data", tmp_path / "runs(1)" / "a"  # cmd splits at & and (
    (here / "images").mkdir(parents=True)
    monkeypatch.chdir(here)
    trainer = SimpleNamespace(
        out=out,
        dist=SimpleNamespace(world_size=1),
        config=SimpleNamespace(data=SimpleNamespace(options={"root": "images"})),
    )
    monkeypatch.setattr(sys, "platform", platform)
    command = _resume_command(trainer)
    assert command == expected.format(here=here, config=out / "config.json", out=out)
