"""References of the fused softmax + cross-entropy kernels."""
import numpy as np

__all__ = ["softmax_xent_forward", "softmax_xent_backward",
           "softmax_xent_dense_forward", "softmax_xent_dense_backward"]


def _softmax(logits, probs):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    probs[...] = np.exp(log_probs)
    return log_probs


def softmax_xent_forward(logits, labels, probs):
    """Mean of -log softmax(logits)[i, labels[i]]; probs := softmax."""
    if len(logits) == 0:
        return 0.0
    if labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError("softmax_xent_forward: label out of range")
    log_probs = _softmax(logits, probs)
    return float(-log_probs[np.arange(len(labels)), labels]
                 .astype(np.float64).mean())


def softmax_xent_backward(probs, labels, scale, dlogits):
    """dlogits := scale * (probs - onehot(labels))."""
    grad = probs.astype(np.float64)
    grad[np.arange(len(labels)), labels] -= 1
    dlogits[...] = scale * grad
    return dlogits


def softmax_xent_dense_forward(logits, target, probs):
    """Mean of -sum_k target log softmax(logits); probs := softmax."""
    if len(logits) == 0:
        return 0.0
    log_probs = _softmax(logits, probs)
    return float(-(target.astype(np.float64) * log_probs).sum(axis=1).mean())


def softmax_xent_dense_backward(probs, target, scale, dlogits):
    """dlogits := scale * (probs * sum_k target - target)."""
    mass = target.sum(axis=1, keepdims=True)
    dlogits[...] = scale * (probs * mass - target)
    return dlogits
