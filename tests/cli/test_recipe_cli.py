"""`pitlane train --remix`, `pitlane recipe export | show | publish`, in-process with typer's CliRunner (real
training, a real socket for the server that is not there). About 8 s."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from contracts.recipe import Recipe, reward_templates
from league_server.broker.embedded import free_port
from pitlane.cli import app
from trainer.config import RunConfig

pytestmark = pytest.mark.xdist_group("recipe-cli-runs")

runner = CliRunner()

RECIPE = Recipe(
    name="shared fast",
    track="oval",
    action_space=[{"steering_angle": -20, "speed": 1.5}, {"steering_angle": 20, "speed": 1.5}],
    reward_function=reward_templates()["progress_and_speed"],
    stop={"minutes": 3, "until_clean_laps": None},
)


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # rich: no wrapped paths or messages


@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("recipes") / "shared.toml"
    path.write_text(RECIPE.to_toml(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def remix_run(recipe_file: Path) -> Path:
    """`pitlane train --remix shared.toml` for two rollouts of 8 cars, on another seed."""
    out = recipe_file.parent / "remix"
    args = [
        "train",
        "--remix",
        str(recipe_file),
        "--out",
        str(out),
        "--steps",
        "1024",
        "-n",
        "8",
        "--seed",
        "2",
    ]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[-1])["steps"] >= 1024
    return out


def test_a_remixed_run_exports_the_recipe_with_its_lineage(remix_run: Path, recipe_file: Path) -> None:
    result = runner.invoke(app, ["recipe", "export", str(remix_run), "--name", "my remix"])
    assert result.exit_code == 0, result.output
    exported = Recipe.from_toml(result.stdout, source="stdout")
    assert exported.model_dump(exclude={"name", "seed", "remixed_from"}) == RECIPE.model_dump(
        exclude={"name", "seed", "remixed_from"}
    )
    assert (exported.name, exported.seed) == ("my remix", 2)
    assert exported.remixed_from is not None
    assert (exported.remixed_from.name, exported.remixed_from.url) == ("shared fast", str(recipe_file))
    assert "reward_function = '''\ndef reward_function(params):" in result.stdout


def test_show_summarises_with_units(recipe_file: Path) -> None:
    result = runner.invoke(app, ["recipe", "show", str(recipe_file)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "shared fast" in out and "oval" in out
    assert "discrete, 2 actions: steering -20 to 20 deg, speed 1.5 to 1.5 m/s" in out
    assert "after 3 min of training" in out and "clean evaluation laps" not in out
    assert "learning rate 0.0003" in out and "batch 64 samples" in out


def test_unusable_files_are_named_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        RECIPE.to_toml().replace("steering_angle = -20.0", "steering_angle = -45.0"), encoding="utf-8"
    )
    shown = runner.invoke(app, ["recipe", "show", str(bad)])
    assert shown.exit_code == 2 and str(bad) in shown.stderr
    assert "`action_space.0.steering_angle`" in shown.stderr
    exported = runner.invoke(app, ["recipe", "export", str(tmp_path / "no-run")])
    assert exported.exit_code == 2 and "no-run: not a run directory" in exported.stderr
    assert exported.stdout == ""


def test_a_run_with_a_built_in_reward_says_to_train_with_a_file(tmp_path: Path) -> None:
    run = tmp_path / "builtin"
    run.mkdir()
    config = {**RunConfig(reward="progress_rate").to_json_dict(), "notes": []}
    (run / "config.resolved.json").write_text(json.dumps(config), encoding="utf-8")
    result = runner.invoke(app, ["recipe", "export", str(run)])
    assert result.exit_code == 2
    assert "built-in reward 'progress_rate'" in result.stderr and "--reward FILE.py" in result.stderr


def test_remix_refuses_flags_the_recipe_fixes(recipe_file: Path, tmp_path: Path) -> None:
    args = ["train", "--remix", str(recipe_file), "--out", str(tmp_path / "r"), "--observation", "lidar"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "--observation cannot change it" in result.stderr
    assert not (tmp_path / "r").exists()


def test_a_server_that_is_not_there_is_said_so(recipe_file: Path, tmp_path: Path) -> None:
    server = f"http://127.0.0.1:{free_port()}"
    published = runner.invoke(
        app, ["recipe", "publish", str(recipe_file), "--server", server, "--token", "t"]
    )
    assert (
        published.exit_code == 2
        and "cannot connect" in published.stderr
        and str(recipe_file) in published.stderr
    )
    url = f"{server}/api/recipes/1.toml"
    remixed = runner.invoke(app, ["train", "--remix", url, "--out", str(tmp_path / "r"), "--token", "t"])
    assert remixed.exit_code == 2 and f"{url}: cannot connect" in remixed.stderr


def test_publish_checks_the_recipe_before_sending_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = ""\n', encoding="utf-8")
    result = runner.invoke(
        app, ["recipe", "publish", str(bad), "--server", "http://127.0.0.1:9", "--token", "t"]
    )
    assert result.exit_code == 2 and f"{bad}: `name`" in result.stderr


@pytest.fixture(scope="module")
def league_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The league app under uvicorn (no broker, no jobs) with a racer Ada of league `web...` and her token."""
    from league_server.crud import virtual
    from tests.league.web_live import serve

    gen = serve(tmp_path_factory.mktemp("recipe-server"), ingest_enabled=False)
    live = next(gen)
    with live.sessions() as session:
        ((_, token),) = virtual.import_roster(session, live.league_id, [virtual.RosterRow("Ada")])
        session.commit()
    yield live, token
    gen.close()


def test_publish_puts_the_recipe_in_the_gallery_and_a_remix_downloads_it(
    league_server: Any, recipe_file: Path, tmp_path: Path
) -> None:
    from league_server.client import fetch_recipe_text

    live, token = league_server
    wrong = runner.invoke(
        app, ["recipe", "publish", str(recipe_file), "--server", live.url, "--token", "nope"]
    )
    assert wrong.exit_code == 2, wrong.output
    assert "did not accept the racer token (401" in wrong.output
    done = runner.invoke(app, ["recipe", "publish", str(recipe_file), "--server", live.url, "--token", token])
    assert done.exit_code == 0, done.output
    assert f"{live.url}/console/models/" in done.output
    model_id = int(done.output.split("/console/models/")[1].split()[0].strip().rstrip("."))
    text = fetch_recipe_text(f"{live.url}/api/recipes/{model_id}.toml", token)
    assert Recipe.from_toml(text) == RECIPE  # the gallery serves exactly what was published
    gallery = __import__("httpx").get(f"{live.url}/api/recipes", headers={"Authorization": f"Bearer {token}"})
    assert [(g["name"], g["author"]) for g in gallery.json()] == [("shared fast", "Ada")]
