"""Before the prompts: offer the caller's AWS account and region as the defaults.

cookiecutter runs this in a temporary copy of the template (the working directory), whose
cookiecutter.json it may change. The work is in the template's sm_template package. A
failure here never stops the bake: the template's own defaults stay.
"""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, os.getcwd())
    try:
        from sm_template.pre_prompt import run

        status = run(Path("cookiecutter.json"))
    except KeyboardInterrupt:
        print("sm-template: interrupted; nothing was generated.", file=sys.stderr)
        status = 130
    except Exception as error:  # a bug of ours must not block the prompts: say so, go on
        print(
            f"WARNING: sm-template could not read AWS defaults ({type(error).__name__}: {error});"
            " the prompts keep the template's defaults",
            file=sys.stderr,
        )
        status = 0
    sys.exit(status)
