from tests.e2e.conftest import make_stack  # noqa: F401  (the same whole-stack fixture)
