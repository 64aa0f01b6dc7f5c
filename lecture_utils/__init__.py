"""lecture_utils: the companion package of the Lecture 4 (MAML) notebooks.

One module per concept; notebooks import what they teach from it:

- ``device``       where tensors live (CUDA, MPS, CPU) and seeding
- ``models``       the sinusoid MLP and the Omniglot Conv4, used functionally
- ``maml``         the inner loop ``adapt`` and ``MAML`` (second order, first order, head only)   §1, §2
- ``reptile``      ``Reptile``                                                                   App. C
- ``blackbox``     a black-box (attention) meta-learner and its objective                       App. B
- ``training``     the meta-training loop (Pseudo-code 2), evaluation, confidence intervals
- ``checkpoints``  atomic save, safe load, load-or-train
- ``cost``         time and memory of a meta-gradient                                             §2
- ``tasks``, ``sinusoid``, ``characters``, ``omniglot``, ``glyphs``, ``episodes``, ``distortions``
                   the task families: sinusoids, real Omniglot, the embedded glyph set, N-way K-shot
- ``plots``, ``widgets``, ``exercises``  figures, interactive controls and self-checks for the notebooks
"""

__version__ = "0.1.0"
