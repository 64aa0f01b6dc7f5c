# IPython startup file for `make test-perturbed`: every float weight nudged by 2-4 float32 ulps.
#
# scripts/perturbed_nbval.py copies this file into a temporary IPYTHONDIR; the nbval kernel
# inherits that environment and runs it before the first cell. Another CPU computes the same
# notebook with different rounding in the last bits; nudging the weights exposes, on one
# machine, every printed number that such rounding would change. The product code is untouched.
#
# What is nudged, by the factor 1 + $MAML_LECTURE_NUDGE (default 2e-7) for float32 tensors, and by
# the same number of ulps of their own type for others (float64: 1 + 2e-7 * eps64 / eps32, about
# 4e-16), since another CPU's rounding differs in the last bits of whatever precision runs:
# - fresh parameters of torch's layers: after each ``reset_parameters`` / ``_reset_parameters``
#   (Linear, Conv2d, MultiheadAttention, LayerNorm, BatchNorm, ...), every parameter whose value
#   the reset changed (a Transformer's re-initialisation of its children included);
# - parameters that package or notebook modules create themselves (``nn.Parameter(torch.ones(C))``
#   in ``BatchStatNorm2d``): after the ``__init__`` of every ``nn.Module`` subclass defined from now on;
# - every float tensor given to ``nn.Module.load_state_dict`` (the committed checkpoints).
#
# Everything runs inside one function that is deleted at the end, so the notebook's namespace
# gains no names (and comments, not a docstring, keep the notebook's __doc__ as IPython's).


def _maml_lecture_nudge_weights():
    import functools
    import os

    import torch
    from torch import nn

    nudge32 = float(os.environ.get("MAML_LECTURE_NUDGE", "2e-7"))
    factor = 1.0 + nudge32
    mark = "_maml_lecture_nudged"

    def factor_for(t):  # the same number of ulps in the tensor's own precision
        return 1.0 + nudge32 * torch.finfo(t.dtype).eps / torch.finfo(torch.float32).eps

    def nudge(params):
        with torch.no_grad():
            for p in params:
                if p.is_floating_point():
                    p.mul_(factor_for(p))
                    setattr(p, mark, True)

    resetting = set()  # ids of modules inside a reset: a subclass's reset calling super() nudges once

    def wrap_reset(method):
        @functools.wraps(method)
        def reset(self, *args, **kwargs):
            if id(self) in resetting:
                return method(self, *args, **kwargs)
            params = list(self.parameters())
            before = [p.detach().clone() for p in params]
            resetting.add(id(self))
            try:
                result = method(self, *args, **kwargs)
            finally:
                resetting.discard(id(self))
            nudge(p for p, old in zip(params, before) if not torch.equal(p.detach(), old))
            return result
        return reset

    def wrap_init(init):
        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            init(self, *args, **kwargs)
            nudge(p for p in self._parameters.values() if p is not None and not getattr(p, mark, False))
        return __init__

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    # torch's own layers, already defined: their reset methods fill the fresh parameters
    # (_ConvNd for Conv2d, _NormBase for BatchNorm2d: wrapped where they are defined)
    for cls in set(subclasses(nn.Module)):
        for name in ("reset_parameters", "_reset_parameters"):
            if name in vars(cls):
                setattr(cls, name, wrap_reset(vars(cls)[name]))

    # modules defined from now on (lecture_utils, notebooks): their own parameters after __init__
    def __init_subclass__(cls, **kwargs):
        super(nn.Module, cls).__init_subclass__(**kwargs)
        if "__init__" in vars(cls):
            cls.__init__ = wrap_init(vars(cls)["__init__"])

    nn.Module.__init_subclass__ = classmethod(__init_subclass__)

    load_state_dict = nn.Module.load_state_dict

    @functools.wraps(load_state_dict)
    def nudged_load_state_dict(self, state_dict, *args, **kwargs):
        with torch.no_grad():
            nudged = type(state_dict)(
                (k, v * factor_for(v) if isinstance(v, torch.Tensor) and v.is_floating_point() else v)
                for k, v in state_dict.items())
        if hasattr(state_dict, "_metadata"):
            nudged._metadata = state_dict._metadata
        return load_state_dict(self, nudged, *args, **kwargs)

    nn.Module.load_state_dict = nudged_load_state_dict
    nn.Module._maml_lecture_nudge = factor  # for the self-check in scripts/perturbed_nbval.py


_maml_lecture_nudge_weights()
del _maml_lecture_nudge_weights
