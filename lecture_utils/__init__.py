"""lecture_utils: the companion package of the Lecture 4 (MAML) notebooks.

One module per concept; notebooks import what they teach from it. Read ``maml.py`` first: the
inner loop and the meta-objective, beside the pseudo-code they implement (docs/map.md maps every
line of the notes to a notebook cell and a function here).

- ``maml``         the inner loop ``adapt`` and ``MAML`` (second order, first order, head only)   §1, §2
- ``reptile``      ``Reptile``                                                                   App. C
- ``meta_sgd``     ``MetaSGD``: MAML with an inner step size learned per weight                  §2
- ``ridge_head``   ``R2D2``: the head solved per task by ridge regression, closed form           §2
- ``imaml``        ``IMAML``: a proximal inner problem, its meta-gradient by conjugate gradient  §2
- ``blackbox``     a black-box (attention) meta-learner and its objective                       App. B
- ``training``     the meta-training loop (Pseudo-code 2), evaluation, confidence intervals
- ``batching``     how the tasks of a meta-batch are run for speed (loop, vmap, expand): same numbers
- ``models``       the sinusoid MLP and the Omniglot Conv4, used functionally
- ``tasks``        ``TaskBatch``, the meta-batch every loop consumes
- ``validation``   every check of what a student passes in (the ground floor: imports nothing here)
- ``device``       where tensors live (CUDA, MPS, CPU) and seeding; ``probe`` checks an accelerator
- ``cost``         time and memory of a meta-gradient                                             §2
- ``sinusoid``, ``characters``, ``omniglot``, ``episodes``, ``distortions``
                   the task families: sinusoids, Omniglot (shipped minimal splits or a full download), N-way K-shot
- ``recipes``      how each trained model of the notebooks was made
- ``pretrained``   load-or-train a recipe's model, checked against checkpoints/manifest.json
- ``checkpoints``  ``CheckpointStore``: where checkpoints live, atomic saves, the manifest and its lock
- ``retrain``      the command line that retrains models (``python -m lecture_utils.retrain``)
- ``files``        atomic writes and file checksums
- ``versions``     the tested versions (constraints.txt) that 00_setup compares with the kernel's
- ``notebook_setup`` the one ``setup()`` call at the top of every notebook
- ``plots``, ``widgets``, ``exercises``  figures, interactive controls, the exercises' self-checks
"""

__version__ = "0.1.0"
