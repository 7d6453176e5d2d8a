"""``streamal label-studio``: a bridge between streamal's topics and a Label Studio project.

Label requests become Label Studio tasks (the model's prediction as a
pre-annotation, the score as the order, the instance id as the task's key);
finished annotations come back as labels on the labels topic, exactly once.
Plain HTTP to Label Studio's REST API (urllib: no SDK); Label Studio's
webhook is served by Starlette under uvicorn, as the annotate page is.

One job per module: :mod:`.config` (the labeling config: written, read,
extended), :mod:`.tasks` (a request as a task), :mod:`.annotations` (an
annotation as a label), :mod:`.ledger` (what needs a task, what may be sent:
the exactly-once bookkeeping; pure), :mod:`.client` (the REST API),
:mod:`.project` (the project, its config kept current, its tab and webhook),
:mod:`.feed` (the topics), :mod:`.bridge` (the loop), :mod:`.web` (the
webhook and ``/status``) and :mod:`.command` (the CLI).
"""

from streamal.apps.label_studio.command import label_studio

__all__ = ["label_studio"]
