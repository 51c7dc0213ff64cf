"""`python -m zoo.models`: the registry as a table (name, task, default data, inputs,
parameters)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from zoo import registry  # noqa: E402
from zoo.config import load_config  # noqa: E402


def table() -> str:
    """The registry table in Markdown; `sample` data is shipped in the package."""
    rows = [registry.describe(name) for name in registry.names()]
    lines = ["| model | task | default data | inputs | parameters | description |",
             "|---|---|---|---|---|---|"]
    lines += [f"| `{r['name']}` | {r['task']} | `{load_config(r['name']).data.dataset}` | "
              f"`{r['inputs']}` | {r['params']:,} | {r['description']} |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
