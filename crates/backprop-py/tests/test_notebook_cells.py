"""The notebook's test cells, verbatim, run against the package.

The cells below are copied character for character from the notebook
(`backpropagation-notebook.md`): the data cell, and the try/except test blocks that follow the
`simple_feed_forward` and `simple_backpropagation` exercises. Each is run after importing the
package's functions in place of the student's definitions, the way a learner would, and must
print the notebook's success message.
"""

import subprocess
import sys
import textwrap

import pytest

# The notebook's first code cell starts with this import (its function stubs are replaced by the
# package).
IMPORT_CELL = "import numpy as np\n"

DATA_CELL = """\
x = np.array([0.01, 0.02, 0.03, 0.04])
W = {
    "w_1": np.ones((4, 5)),
    "w_2": np.ones(5)
}
y = 1
"""

FEED_FORWARD_TEST_CELL = """\
try:
    expected = 0.93244675427215695
    yours = simple_feed_forward(x, W)
    assert np.sum((yours - expected) ** 2) < 1e-15
    print("Your implementation is correct!")
except:
    print("Your implementation is not correct.")
"""

BACKPROPAGATION_TEST_CELL = """\
try:
    expected = {
        'w_1': np.array([
            [ -1.06113639e-05,  -1.06113639e-05,  -1.06113639e-05, -1.06113639e-05,  -1.06113639e-05],
            [ -2.12227277e-05,  -2.12227277e-05,  -2.12227277e-05, -2.12227277e-05,  -2.12227277e-05],
            [ -3.18340916e-05,  -3.18340916e-05,  -3.18340916e-05, -3.18340916e-05,  -3.18340916e-05],
            [ -4.24454555e-05,  -4.24454555e-05,  -4.24454555e-05, -4.24454555e-05,  -4.24454555e-05]]),
        'w_2': np.array(
            [-0.00223387, -0.00223387, -0.00223387, -0.00223387, -0.00223387])
    }
    yours = simple_backpropagation(y, x, W)    
    assert np.sum(
        [np.sum((yours[key] - expected[key]) ** 2)
         for key in expected.keys()]) < 1e-15
    print("Your implementation is correct!")
except:
    print("Your implementation is not correct!")
"""

SUCCESS = "Your implementation is correct!\n"

STAR_IMPORT = "from backprop import *\n"
NAMED_IMPORT = "from backprop import sigmoid, grad_sigmoid, simple_feed_forward, simple_backpropagation\n"


def run_cells(*cells):
    """Runs cells one after another in one namespace, like a notebook kernel."""
    namespace = {"__name__": "__main__"}
    for cell in cells:
        exec(compile(cell, "<notebook cell>", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("import_cell", [STAR_IMPORT, NAMED_IMPORT], ids=["star-import", "named-import"])
def test_feed_forward_cell_prints_success(capsys, import_cell):
    run_cells(IMPORT_CELL, import_cell, DATA_CELL, FEED_FORWARD_TEST_CELL)
    assert capsys.readouterr().out == SUCCESS


@pytest.mark.parametrize("import_cell", [STAR_IMPORT, NAMED_IMPORT], ids=["star-import", "named-import"])
def test_backpropagation_cell_prints_success(capsys, import_cell):
    run_cells(IMPORT_CELL, import_cell, DATA_CELL, BACKPROPAGATION_TEST_CELL)
    assert capsys.readouterr().out == SUCCESS


def test_star_import_leaves_the_notebooks_names_alone():
    # `from backprop import *` after the data cell must not overwrite x, W, y or np.
    ns = run_cells(IMPORT_CELL, DATA_CELL, STAR_IMPORT)
    assert ns["y"] == 1 and set(ns["W"]) == {"w_1", "w_2"} and ns["x"].shape == (4,)
    assert ns["np"].__name__ == "numpy"


def test_whole_notebook_flow_in_a_fresh_interpreter():
    # As a learner runs it: a new Python process, the cells in notebook order.
    script = IMPORT_CELL + STAR_IMPORT + DATA_CELL + FEED_FORWARD_TEST_CELL + BACKPROPAGATION_TEST_CELL
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert out == SUCCESS * 2


def test_cells_fail_loudly_on_wrong_answers(capsys):
    # The cells are real checks: a wrong implementation makes them print the failure message.
    wrong = textwrap.dedent(
        """\
        def simple_feed_forward(x, W):
            return 0.5
        def simple_backpropagation(y, x, W):
            return {"w_1": np.zeros((4, 5)), "w_2": np.zeros(5)}
        """
    )
    run_cells(IMPORT_CELL, wrong, DATA_CELL, FEED_FORWARD_TEST_CELL, BACKPROPAGATION_TEST_CELL)
    assert capsys.readouterr().out == (
        "Your implementation is not correct.\nYour implementation is not correct!\n"
    )
