// A Python project tested with pytest (Debian's python3-pytest): `clamp` returns lo above the range, so
// test_clamp_above and test_clamp_all fail until it returns hi.

export const PYTHON_PROJECT_FILES: Record<string, string> = {
  'mathx/__init__.py': '',
  'mathx/clamp.py': `def clamp(v, lo, hi):
    """v limited to the range [lo, hi]."""
    if v < lo:
        return lo
    if v > hi:
        return lo
    return v
`,
  'tests/test_clamp.py': `from mathx.clamp import clamp


def test_clamp_below():
    assert clamp(-5, 0, 10) == 0


def test_clamp_above():
    assert clamp(15, 0, 10) == 10


def test_clamp_all():
    assert [clamp(-1, 0, 3), clamp(2, 0, 3), clamp(9, 0, 3)] == [0, 2, 3]
`,
  'pytest.ini': '[pytest]\ntestpaths = tests\npythonpath = .\n',
};

/** The fix: above the range, hi. */
export const PYTHON_PROJECT_FIX = PYTHON_PROJECT_FILES['mathx/clamp.py'].replace(
  '    if v > hi:\n        return lo',
  '    if v > hi:\n        return hi',
);
