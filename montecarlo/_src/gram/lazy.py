r"""Lazy exact sampling: the Gram of a random network without drawing its wide weight matrices.

At initialisation every ``W_p`` is independent of everything before it, and
the Gram needs ``W_p`` only through ``Z = H W^T`` (forward) and ``Delta W``
(backward), where ``H`` (``N x n``) is the layer input and ``Delta`` (``N x m``)
the gradient with respect to ``Z`` (rows are examples).  Both can be drawn
exactly, in law, from ``O((m + n) N^2)`` work and ``O((m + n) N)`` normals
instead of ``O(m n N)`` work and ``m n`` normals.  Let ``H^T = U R`` be a QR
factorisation with ``U`` (``n x N``) orthonormal; it needs ``n >= N`` and holds
for rank-deficient ``H`` too (then ``R`` is singular and ``U`` still spans a
space containing the rows of ``H``).  ``P = U U^T``.

**Gaussian weights** (iid ``N(0, s^2)``).  ``A := W U`` has iid ``N(0, s^2)``
entries (``U`` is orthonormal and independent of ``W``), so

    Z = H W^T = R^T (W U)^T = R^T A^T,          A = s G,  G ~ N(0, 1)^{m x N}.

Backward: ``Delta W = Delta W P + Delta W (I - P) = (Delta A) U^T + Delta W (I - P)``.
``W (I - P)`` is independent of ``W P`` (orthogonal projections of a Gaussian),
hence of ``Z``, of ``Delta`` and of everything after the layer.  Given
``Delta``, ``Delta W (I - P) = (sum_j d_j w_j^T)(I - P)`` (``d_j``, ``w_j`` the
``j``-th columns of ``Delta`` and rows of ``W``) is Gaussian with row
covariance ``Delta Delta^T`` and column covariance ``s^2 (I - P)``: in law,

    Delta W (I - P) = C (s G_1)^T (I - P),      C C^T = Delta Delta^T,  G_1 ~ N(0, 1)^{n x N}

(the issue's ``s (I - P) G' C^T``, transposed to rows-as-examples).  ``C`` comes
from the eigendecomposition of ``Delta Delta^T``, the ``N x N`` matrix the Gram
needs anyway.

**Haar-orthogonal weights, m >= n** (``W = g Q`` with ``Q^T Q = I_n``, Haar).
``F := Q U`` (``m x N``) is a uniformly random orthonormal ``N``-frame in
``R^m`` (left invariance of the Haar law), so ``Z = g R^T F^T``.  Backward:
``Delta Q = (Delta F) U^T + Delta Q (I - P)``.  Given ``F``, the rest of ``Q``,
``Q U_perp``, is a uniform ``(n - N)``-frame ``E`` in the complement ``L`` of
``span F`` (dimension ``m - N``): the second random frame.  Write
``D_perp = (I - F F^T) Delta^T = B M`` with ``B`` orthonormal in ``L`` and
``M = Lambda^{1/2} V^T`` from ``D_perp^T D_perp = Delta Delta^T - (Delta F)(Delta F)^T
= V Lambda V^T`` (its rank is at most ``k = min(N, m - N)``, so the top ``k``
eigenpairs suffice and ``B`` is never formed).  Then
``(I - P) Q^T Delta^T = U_perp E^T B M`` and ``E^T B`` is the top
``(n - N) x k`` block of a uniform ``k``-frame in ``R^{m - N}``.  Such a frame is
``Y (Y^T Y)^{-1/2}`` -- or ``Y L^{-T}`` with ``Y^T Y = L L^T``, the Q factor of
Gram-Schmidt, also uniform -- for ``Y = [U_perp^T G_1; G_2]`` Gaussian, so

    Delta Q (I - P) = M^T L^{-1} G_1^T (I - P),   L L^T = G_1^T (I - P) G_1 + G_2^T G_2,

with ``G_1 ~ N(0,1)^{n x k}``, ``G_2 ~ N(0,1)^{(m - n) x k}`` (absent for square
layers).  For ``m < n`` (a wide orthogonal layer) the layer is drawn densely.

**Where it applies.**  A layer is sampled lazily when its fan-in ``n`` and its
fan-out ``m`` both exceed ``N`` (and, for orthogonal weights, ``m >= n``): then
``(m + n) N^2`` is below ``m n N``.  Other layers (the ``1 x width`` output
row, a first layer with ``d <= N``) are drawn densely, exactly as
``MLP.init`` draws them.  Biases are drawn explicitly.  The result is exact
in law -- the same distribution of the Gram as dense sampling -- not equal
draw by draw.
"""

from __future__ import annotations

from ..draw.layers import DENSE, LAZY_GAUSSIAN, LayerDraw


def _eigh_psd(xp, M):
    """Eigenvalues and eigenvectors of a symmetric PSD matrix; eigenvalues at rounding level set to 0.

    An eigenvalue below ``N * eps * lambda_max`` is rounding of a zero (``M`` is
    often singular: relu zeros, ``rank Delta < N``); left in, its square root
    (``~ sqrt(eps)``) would mix the null space into the factor.
    """
    values, vectors = xp.linalg.eigh(M)
    eps = xp.finfo(M.dtype).eps
    cutoff = values[..., -1:] * (M.shape[-1] * eps)
    return xp.where(values > cutoff, values, xp.zeros_like(values)), vectors


def symmetric_sqrt(xp, M):
    """The symmetric square root ``C = V Lambda^{1/2} V^T`` of a PSD matrix: ``C C^T = M``, unique.

    Unique, unlike ``V Lambda^{1/2}``, whose columns depend on the eigensolver's
    choice of signs and of bases of repeated (for instance zero) eigenvalues;
    so every backend turns the same normals into the same numbers.
    """
    values, vectors = _eigh_psd(xp, M)
    return (vectors * xp.sqrt(values)[..., None, :]) @ vectors.mT


def top_factor(xp, M, k: int):
    """``V_k Lambda_k^{1/2}`` (``N x k``) from the top ``k`` eigenpairs of a PSD matrix ``M``.

    Its outer product is ``M`` when ``rank M <= k``.  Each eigenvector's sign
    is fixed (its entry of largest magnitude is positive) so that the factor
    does not depend on the eigensolver (eigenvalues are distinct almost surely).
    """
    values, vectors = _eigh_psd(xp, M)
    vectors, values = vectors[..., -k:], values[..., -k:]
    index = xp.argmax(xp.abs(vectors), -2)[..., None, :]
    take = xp.take_along_dim if xp.__name__ == "torch" else xp.take_along_axis
    signs = xp.sign(take(vectors, index, -2))
    signs = xp.where(signs == 0, xp.ones_like(signs), signs)
    return vectors * signs * xp.sqrt(values)[..., None, :]


def frame(xp, h):
    """``(U, R)`` with ``H^T = U R``, ``U`` (``n x N``) orthonormal and ``R``'s diagonal >= 0 (Householder QR).

    The sign convention makes the factorisation unique for full-rank ``H``, so
    every backend turns the same normals into the same numbers whatever
    algorithm it uses (the numba kernel's ``_frame`` uses Cholesky QR2).
    """
    U, R = xp.linalg.qr(h.mT)
    diagonal = xp.diagonal(R, 0, -2, -1)
    signs = xp.where(diagonal < 0, -xp.ones_like(diagonal), xp.ones_like(diagonal))
    return U * signs[..., None, :], R * signs[..., :, None]


def pre_activation(xp, layer, h):
    """``(Z, U)`` of one layer: ``Z = H W^T`` for a dense weight (``U`` is None), ``R^T A^T`` with ``H^T = U R`` if lazy."""
    if not isinstance(layer, LayerDraw):
        return h @ layer.mT, None
    if layer.mode == DENSE:
        return h @ layer.weight.mT, None
    U, R = frame(xp, h)
    return R.mT @ layer.weight.mT, U


def hidden_norms(activation: str, layers, biases, h, depth: int, xp):
    """``(|z_0|^2, |z_(beta-1)|^2)`` of the inputs ``h`` (``... x N x d``): the first and last hidden pre-activations.

    ``z_p = W_p h_p (+ b_p)``, ``h_{p+1} = s(z_p)`` for ``p < depth``; each
    layer dense (an array, or a dense ``LayerDraw``) or lazy (exact in law,
    :func:`pre_activation`).  The one forward pass behind every forward-norm
    ratio (``MLPTrial.norm_ratio``, ``phenomena.spectra``); for a linear
    network with Strategy 4.1 weights the ratio is a product of ``beta - 1``
    independent ``chi^2_width / width`` factors (``theory.chi_square_products``).
    """
    from ..draw.elementwise import activation_with_derivative

    for p in range(depth):
        z, _ = pre_activation(xp, layers[p], h)
        if biases is not None:
            z = z + biases[p][..., None, :]
        if p == 0:
            first = (z**2).sum(-1)
        h, _ = activation_with_derivative(activation, z, xp)
    return first, (z**2).sum(-1)


def input_gradient(xp, layer, delta, U):
    """``Delta W`` of one layer: exact for a dense weight, exact in law for a lazy one (module docstring)."""
    if not isinstance(layer, LayerDraw):
        return delta @ layer
    if layer.mode == DENSE:
        return delta @ layer.weight
    # Regrouped so that each n-long product is formed once: with C the factor in front of G_1^T (I - P),
    # (Delta A) U^T + C G_1^T (I - P) = C G_1^T + (Delta A - C (G_1^T U)) U^T.
    delta_a = delta @ layer.weight  # Delta A  (N x N)
    g1_u = U.mT @ layer.g1  # U^T G_1
    if layer.mode == LAZY_GAUSSIAN:
        factor = symmetric_sqrt(xp, delta @ delta.mT)
    else:
        delta_f = delta_a / layer.scale
        M_t = top_factor(xp, delta @ delta.mT - delta_f @ delta_f.mT, layer.g1.shape[-1])  # M^T, N x k
        gram_y = layer.g1.mT @ layer.g1 - g1_u.mT @ g1_u + layer.g2.mT @ layer.g2
        L = xp.linalg.cholesky(gram_y)
        factor = layer.scale * xp.linalg.solve(L.mT, M_t.mT).mT  # s M^T L^{-1}
    out = factor @ layer.g1.mT + (delta_a - factor @ g1_u.mT) @ U.mT
    # An example whose backward signal is exactly zero (a dead relu output) has
    # Delta W = 0 exactly; the factor above gives it rounding noise instead.
    return out * xp.any(delta != 0, -1)[..., None]
