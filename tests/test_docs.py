"""The documentation a user reads: the README's first page fits, and no link leaves the repository
or points at a file that is not there."""

from __future__ import annotations

import re

from tests.conftest import ROOT

LINK = re.compile(r"\]\(([^)\s]+)\)")


def docs() -> list:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "experiments").glob("**/*.md"))]


def test_readme_first_page_fits_and_links_into_docs():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; reference material belongs in docs/"
    text = "\n".join(lines)
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"(docs/{page.name}" in text, f"README.md does not link docs/{page.name}"


def test_every_link_stays_in_the_repository_and_finds_its_file():
    for doc in docs():
        for target in LINK.findall(doc.read_text()):
            if target.startswith(("http://", "https://", "#", "mailto:")):
                continue
            path = (doc.parent / target.split("#", 1)[0]).resolve()
            assert path.is_relative_to(ROOT), f"{doc.relative_to(ROOT)} links outside the repository: {target}"
            assert path.exists(), f"{doc.relative_to(ROOT)} links to a missing file: {target}"
        assert "../shared/" not in doc.read_text(), f"{doc.relative_to(ROOT)} names ../shared, which a clone lacks"


def check_current(script: str) -> None:
    """experiments/SCRIPT --check: what it writes from the kept records is what is committed."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / script), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_readme_results_tables_are_the_records():
    """The README's Results tables are what experiments/results.py makes from the kept records now:
    a number edited by hand, or records added without remaking the tables, fails here."""
    check_current("results.py")
    readme = (ROOT / "README.md").read_text()
    # and the check is not empty: the tables hold the seed's run and today's default's post row
    assert "| post | the seed's (d2l, MXNet) | 1 | 0.557 | | 89.3 | 91.7 | |" in readme
    assert "| post | seed's step, fp32 ([`bf16_vs_fp32`](experiments/bf16_vs_fp32/)" in readme


def test_the_cost_table_is_the_records():
    """experiments/costs.md is what experiments/costs.py makes from the kept records now; the
    README's cost table points to it."""
    check_current("costs.py")
    costs = (ROOT / "experiments" / "costs.md").read_text()
    assert "| `identity_mappings/jobs` | 15 of 15 | 10 |" in costs  # and it is not empty
    readme = (ROOT / "README.md").read_text()
    assert "(experiments/costs.md)" in readme
    # the README's cost table is costs.py's by network, precision and machine: the seed's network in
    # fp32 has its fastest job at 22.0 minutes (in block_order/jobs)
    assert "| 14 layers, 96 px, precise BN and running averages | 32-true | not recorded | 31 | 22.0 / " in readme


def test_the_readme_verdicts_are_written_from_the_records():
    """The README's verdict bullets, and each of the three experiments' own, are
    experiments/verdicts.py's from the kept records now (a
    reading or a number edited by hand fails here), and they hold what the records give, by
    measures a reviewer re-derived: bf16's TOST p, He et al.'s gaps excluded for 7 of 10 pairs with
    precise BN, the seed's post run inside one run's prediction interval (our mean's CI named as not
    the test for one run), post vs pre's equivalence as far as the two-sweep design allows."""
    check_current("verdicts.py")
    readme = (ROOT / "README.md").read_text()
    assert "(90% CI -0.11 to +0.63, not inside ±0.5; TOST p = 0.122)" in readme
    assert "He et al.'s gap lies outside our 95% CI for 7 of 10 pairs" in readme
    own = (ROOT / "experiments" / "identity_mappings" / "README.md").read_text()
    assert "He et al.'s gap lies outside our 95% CI for 7 of 10 pairs" in own
    assert "([`identity_mappings`](../../experiments/identity_mappings/)" in own  # its links from where it lies
    assert "post's 89.3 lies inside the 95% prediction interval for one run of ours" in readme
    assert "beside our mean's 95% CI, 89.37 to 91.06, which is not the test for one run, it lies outside" in readme
    # the 8 pairs came from two sweeps, a look between them: equivalence is claimed as far as it holds
    assert (
        "with precise BN not shown equal within ±0.5 point by the anytime-valid sequence, which allows for the "
        "look between its two sweeps (a fixed-n TOST, which does not, would say equal)"
    ) in readme
    # the other pages' figures: the seed's largest drops from its log, the first sweep's spread that
    # sized the second, the old bf16 check's equivalence test, He et al.'s own gap
    page = lambda name: (ROOT / "experiments" / name / "README.md").read_text()  # noqa: E731
    assert "| largest epoch-to-epoch drop of test acc (points) | 1.4 | 8.56 ± 3.86 (worst 14.39) | 0.9 |" in page(
        "block_order_full_step"
    )
    assert "(sd 0.48 points,\nprecise BN), a 95% CI of ±0.5 point needs about 7 pairs" in page("block_order")
    assert "90% CI -9.14 to +14.35, not inside ±0.5; TOST p = 0.673" in page("bf16_vs_fp32_full_step")
    assert "are 1.80 points of error apart" in page("identity_mappings")


def test_the_bench_table_is_its_json_files():
    """experiments/bench_cpu's table is table.py's from the bench's JSON files now."""
    check_current("bench_cpu/table.py")
    assert (
        "| `fp32.json` | device, 32-true, compile none, channels_last, keeps freed memory (`trainer.precision=32-true`) | 236 | 402 |"
        in (ROOT / "experiments" / "bench_cpu" / "README.md").read_text()
    )


def test_the_step_profile_page_is_its_measurements():
    """experiments/bench_cpu/step_profile.md is what step_profile.py makes from its kept
    measurements (step_profile.json), its parts adding up to the step in both precisions."""
    import json
    import subprocess
    import sys

    folder = ROOT / "experiments" / "bench_cpu"
    r = subprocess.run([sys.executable, str(folder / "step_profile.py"), "--table", str(folder / "step_profile.json")],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0 and r.stdout == (folder / "step_profile.md").read_text(), r.stderr
    for result in json.loads((folder / "step_profile.json").read_text())["results"]:
        assert abs(sum(result["by_part"].values()) - result["ms_per_step"]) < 0.01 * result["ms_per_step"]
