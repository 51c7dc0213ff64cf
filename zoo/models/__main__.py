"""`python -m zoo.models`: the registry as a table (name, task, inputs, parameters)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from zoo import registry  # noqa: E402


def table() -> str:
    """The registry table in Markdown."""
    rows = [registry.describe(name) for name in registry.names()]
    lines = ["| model | task | inputs | parameters | description |", "|---|---|---|---|---|"]
    lines += [f"| `{r['name']}` | {r['task']} | `{r['inputs']}` | {r['params']:,} | "
              f"{r['description']} |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
