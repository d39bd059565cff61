"""The engine in one page: tensors, reverse-mode gradients, gradcheck, a tiny fit.

    python examples/autograd_basics.py
"""
import argparse

import numpy as np

import minidl
import minidl.functional as F
from minidl import nn, optim


def main():
    minidl.manual_seed(0)

    # 1. A matrix product: a 2x4 matrix times a 4-vector.
    a = minidl.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]], requires_grad=True)
    v = minidl.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    y = a @ v
    print("a @ v =", y.numpy())  # [30. 70.]

    # 2. Gradients: d(sum(a @ v))/da has every row equal to v.
    y.sum().backward()
    print("d/da =\n", a.grad)

    # 3. Check an op's gradient against finite differences (float64).
    x = minidl.tensor(np.random.default_rng(0).standard_normal((3, 5)), requires_grad=True)
    print("gradcheck(softmax):", minidl.gradcheck(lambda x: F.softmax(x), [x]))

    # 4. Fit y = sign(x0 * x1) (XOR quadrants) with a small MLP.
    rng = np.random.default_rng(1)
    points = rng.uniform(-1, 1, (512, 2)).astype(np.float32)
    labels = (points[:, 0] * points[:, 1] > 0).astype(np.float32)[:, None]
    model = minidl.Sequential([nn.Dense(16, activation="tanh"), nn.Dense(16, activation="tanh"), nn.Dense(1, activation="sigmoid")])
    model.build((None, 2))
    opt = optim.Adam(model.parameters(), lr=0.02)
    for step in range(301):
        loss = F.binary_cross_entropy(model(points), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            print(f"step {step:3d}  loss {loss.item():.4f}")
    model.eval()
    with minidl.no_grad():
        accuracy = ((model(points).numpy() > 0.5) == labels).mean()
    print(f"training accuracy {accuracy:.3f}")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()  # --help, and no options
    main()
