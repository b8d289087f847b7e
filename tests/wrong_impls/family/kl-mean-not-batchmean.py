"""kl_div with reduction="batchmean" divided by every element (N * C), as ``mean`` does,
instead of by the batch size N: the classic PyTorch trap (the KL per sample is batchmean).

Diagnosis: kl-mean-not-batchmean
"""

import xent_ref as xr


def kl_div(input, target, reduction="mean", log_target=False):
    if reduction == "batchmean":
        reduction = "mean"  # BUG: divides by N * C
    return xr.kl_div(input, target, reduction=reduction, log_target=log_target)


def kl_div_grad(input, target, reduction="mean", log_target=False, grad_output=None):
    if reduction == "batchmean":
        reduction = "mean"  # BUG
    return xr.kl_div_grad(input, target, reduction=reduction, log_target=log_target,
                          grad_output=grad_output)
