"""The workshop walkthrough notebook runs end to end, headless, with no audio device."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

from tests.conftest import REPO

NOTEBOOK = REPO / "examples" / "notebook" / "walkthrough.ipynb"


def test_the_walkthrough_notebook_runs_end_to_end_with_no_audio_device():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 4, "latent plot, spectrograms, loss curve, learned field"
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "stopped: early stop" in text or "stopped: epoch limit" in text
    assert "notebook.json" in text, "the mapping was saved"
