"""Batch normalisation (Ioffe & Szegedy 2015), over every axis but the last (channels
last, as Keras' BatchNormalization(axis=-1))."""
import numpy as np

from minidl.autograd import Function, Tensor, as_tensor
from minidl.backend import get_array_module


class BatchNormTrain(Function):
    """y = gamma * xhat + beta, xhat = (x - mean) / sqrt(var + eps) with the batch's
    biased statistics over the reduced axes (n elements per channel).
    dx = gamma / sqrt(var + eps) * (g - mean(g) - xhat * mean(g * xhat)),
    dgamma = sum(g * xhat), dbeta = sum(g)."""

    @staticmethod
    def forward(ctx, x, gamma, beta, mean, var, epsilon):
        inv_std = 1 / np.sqrt(var + epsilon)
        xhat = (x - mean) * inv_std
        ctx.save(xhat, gamma, inv_std)
        ctx.axes = tuple(range(x.ndim - 1))
        return gamma * xhat + beta

    @staticmethod
    def backward(ctx, grad):
        xhat, gamma, inv_std = ctx.saved
        axes = ctx.axes
        grad_beta = grad.sum(axis=axes)
        grad_gamma = (grad * xhat).sum(axis=axes)
        n = grad.size // grad.shape[-1]
        grad_x = gamma * inv_std * (grad - grad_beta / n - xhat * (grad_gamma / n))
        return grad_x, grad_gamma, grad_beta


class BatchNormInference(Function):
    """y = gamma * xhat + beta with xhat = (x - mean) * inv_std from the running
    statistics (constants here): dx = g * gamma * inv_std, dgamma = sum(g * xhat),
    dbeta = sum(g). One op instead of four, as a batch-1 forward pass pays per op."""

    @staticmethod
    def forward(ctx, x, gamma, beta, mean, inv_std):
        scale = gamma * inv_std
        if ctx.needs_input_grad[1]:
            ctx.save((x - mean) * inv_std, scale)
        else:
            ctx.save(None, scale)
        ctx.axes = tuple(range(x.ndim - 1))
        return x * scale + (beta - mean * scale)

    @staticmethod
    def backward(ctx, grad):
        xhat, scale = ctx.saved
        grad_gamma = (grad * xhat).sum(axis=ctx.axes) if xhat is not None else None
        return grad * scale, grad_gamma, grad.sum(axis=ctx.axes)


def batch_norm(x, gamma, beta, running_mean, running_var, training=False, momentum=0.99, epsilon=1e-3):
    """Normalise x (..., channels) per channel.

    training: use the batch's statistics and update the running ones in place as Keras
    does: running = momentum * running + (1 - momentum) * batch (biased variance).
    inference: use the running statistics (BatchNormInference).
    gamma, beta: (channels,) Tensors; running_mean, running_var: (channels,) arrays.
    """
    x = as_tensor(x)
    channels = x.shape[-1]
    for name, value in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean), ("running_var", running_var)):
        if tuple(value.shape) != (channels,):
            raise ValueError(f"batch_norm: {name} has shape {tuple(value.shape)}, the input has {channels} channels")
    if isinstance(running_mean, Tensor):
        running_mean, running_var = running_mean.data, running_var.data
    if not training:
        xp = get_array_module(x.data)
        inv_std = xp.asarray(1 / xp.sqrt(running_var + epsilon), dtype=x.dtype)
        return BatchNormInference.apply(x, gamma, beta, mean=xp.asarray(running_mean, dtype=x.dtype),
                                        inv_std=inv_std)
    if x.size // channels < 2:
        raise ValueError("batch_norm: training needs more than one value per channel to estimate the variance")
    axes = tuple(range(x.ndim - 1))
    batch_mean, batch_var = x.data.mean(axis=axes), x.data.var(axis=axes)
    out = BatchNormTrain.apply(x, gamma, beta, mean=batch_mean, var=batch_var, epsilon=float(epsilon))
    running_mean *= momentum
    running_mean += (1 - momentum) * batch_mean
    running_var *= momentum
    running_var += (1 - momentum) * batch_var
    return out

