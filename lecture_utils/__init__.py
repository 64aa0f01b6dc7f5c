"""lecture_utils: the companion package of the Lecture 4 (MAML) notebooks.

One module per concept; notebooks import what they teach from it:

- ``device``       where tensors live (CUDA, MPS, CPU) and seeding
- ``models``       the sinusoid MLP and the Omniglot Conv4, used functionally
- ``maml``         the inner loop ``adapt`` and ``MAML`` (second order, first order, head only)   §1, §2
- ``reptile``      ``Reptile``                                                                   App. C
- ``blackbox``     a black-box (attention) meta-learner and its objective                       App. B
- ``validation``   the checks at every objective's boundary: task type, learning rate, batch shapes
- ``training``     the meta-training loop (Pseudo-code 2), evaluation, confidence intervals
- ``checkpoints``  atomic save and safe load of trained weights
- ``pretrained``   the notebooks' trained models: recipes, load-or-train, checkpoints/manifest.json
- ``files``        atomic writes and file checksums
- ``cost``         time and memory of a meta-gradient                                             §2
- ``tasks``        ``TaskBatch``, the meta-batch every loop consumes, and the checks of counts
- ``sinusoid``, ``characters``, ``omniglot``, ``episodes``, ``distortions``
                   the task families: sinusoids, Omniglot (shipped minimal splits or a full download), N-way K-shot
- ``plots``        figures shared by the notebooks
- ``widgets``      interactive controls (``widgets.sinusoid``, ``widgets.shift``, ``widgets.sketchpad``)
- ``exercises``    the self-checks of each notebook's exercises
- ``versions``     the tested versions (constraints.txt) that 00_setup compares with the kernel's
"""

__version__ = "0.1.0"
