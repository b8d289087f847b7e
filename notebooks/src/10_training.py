# %% [markdown]
# <!-- en -->
# # 10. A real training run with hand-written gradients
#
# Notebooks 5 and 9 derived and checked the gradient of the cross-entropy. Here it
# does its job: training classifiers on real data, with every gradient written by
# hand in NumPy (no autograd anywhere). The data are the handwritten digits that
# scikit-learn ships with itself (`sklearn.datasets.load_digits`: 1797 images of
# 8 x 8 pixels, ten classes; nothing is downloaded). Two models, as in d2l's
# "softmax regression from scratch" and the first multilayer perceptron of every
# course:
#
# 1. **softmax regression**: logits $= X W + b$, one linear layer;
# 2. **a two-layer net**: $h = \tanh(X W_1 + b_1)$, logits $= h W_2 + b_2$.
#
# Both are trained by minibatch stochastic gradient descent on the loss
# `xr.cross_entropy(logits, y)`. The gradient at the logits is notebook 9's
# $(p - \text{onehot}(y)) / B$ for a batch of $B$, and the chain rule carries it to
# the weights. Before training, each hand-written parameter gradient is compared
# with central finite differences of the loss; the gradient at the logits with
# `xr.cross_entropy_grad`. The seeds are fixed, so every number below is the same
# on every run; the whole notebook takes a few seconds. This notebook also exists in
# Chinese, `zh/10_training.ipynb`, built from the same source.
# <!-- zh -->
# # 10. 用手写梯度真正训练一次
#
# 第 5 和第 9 个笔记本推导并核对了交叉熵的梯度。这里让它真正派上用场：在真实数据上训练分类器，
# 每个梯度都用 NumPy 手写（全程不用自动求导）。数据是 scikit-learn 自带的手写数字
# （`sklearn.datasets.load_digits`：1797 张 8 x 8 像素的图片，十个类别；无需下载）。两个模型，
# 与 d2l 的"从零实现 softmax 回归"以及每门课的第一个多层感知机相同：
#
# 1. **softmax 回归**：logits $= X W + b$，只有一个线性层；
# 2. **两层网络**：$h = \tanh(X W_1 + b_1)$，logits $= h W_2 + b_2$。
#
# 两者都用小批量随机梯度下降训练，损失为 `xr.cross_entropy(logits, y)`。对一个大小为 $B$ 的
# 批次，logits 处的梯度就是第 9 个笔记本里的 $(p - \text{onehot}(y)) / B$，链式法则再把它传到
# 权重上。训练之前，每个手写的参数梯度都与损失的中心差分比较；logits 处的梯度则与
# `xr.cross_entropy_grad` 比较。随机种子是固定的，所以下面的每个数字每次运行都一样；整个笔记本
# 只需几秒钟。本笔记本与英文版 `../10_training.ipynb` 由同一个源文件生成，两者的数字完全一致。

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

import xent_ref as xr

# [zh] Chinese plot labels: Noto Sans SC from the pylopdf-fonts-zh-cn package (the notebooks extra)
import pylopdf_fonts_zh_cn  # [zh]
from matplotlib import font_manager  # [zh]
font_manager.fontManager.addfont(pylopdf_fonts_zh_cn.sans_path())  # [zh]
plt.rcParams["font.sans-serif"] = ["Noto Sans SC", *plt.rcParams["font.sans-serif"]]  # [zh]

np.set_printoptions(precision=4, suppress=True)


def relative_error(name, ours, reference):
    """CS231n's gradient check: max |ours - reference| / max(|ours| + |reference|),
    printed; about 1e-8 or less means the gradient is right, 1e-2 that it is wrong."""
    scale = np.abs(ours).max() + np.abs(reference).max()
    error = float(np.abs(ours - reference).max() / max(scale, 1e-300))
    print(_("nb.10.relative_error"))
    assert error < 1e-7, name


def central_differences(f, x, h=1e-5):
    """The numerical gradient of the scalar function f() of the array x, which it
    changes in place one element at a time (and restores)."""
    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        saved = x[index]
        x[index] = saved + h
        up = f()
        x[index] = saved - h
        down = f()
        x[index] = saved
        grad[index] = (up - down) / (2 * h)
    return grad

# %% [markdown]
# <!-- en -->
# ## The data
#
# A fixed permutation (seed 0) holds out 450 images as the test set; the model never
# trains on them. Each pixel (0 to 16) is centred and scaled with the training
# set's mean and standard deviation (plus 1, so that the pixels that are always
# blank stay 0 instead of dividing by 0).
# <!-- zh -->
# ## 数据
#
# 用一个固定的排列（种子 0）留出 450 张图片作为测试集，模型从不在上面训练。每个像素（0 到 16）
# 用训练集的均值和标准差（加 1，这样始终空白的像素仍是 0，而不会除以 0）做中心化和缩放。

# %%
digits = load_digits()
order = np.random.default_rng(0).permutation(len(digits.target))
test, train = order[:450], order[450:]
mean = digits.data[train].mean(axis=0)
scale = digits.data[train].std(axis=0) + 1.0
X_train, y_train = (digits.data[train] - mean) / scale, digits.target[train]
X_test, y_test = (digits.data[test] - mean) / scale, digits.target[test]
print(_("nb.10.train_test_sizes"))

fig, axes = plt.subplots(1, 10, figsize=(10, 1.4))
for ax, index in zip(axes, train[:10]):
    ax.imshow(digits.images[index], cmap="gray_r")
    ax.set_title(str(digits.target[index]))
    ax.axis("off")
plt.show()

# %% [markdown]
# <!-- en -->
# ## Two models, forward and backward side by side
#
# Each model is a function `(params, x, y) -> (loss, grads)`. The backward lines
# follow the forward ones in reverse:
#
# * the loss's gradient at the logits: $G = (p - \text{onehot}(y)) / B$;
# * a linear layer $z = a W + b$: $\partial W = a^\top G$, $\partial b = \sum_i G_i$
#   (the bias is broadcast over the rows, so its gradient sums them),
#   $\partial a = G W^\top$;
# * $h = \tanh(u)$: $\partial u = \partial h \odot (1 - h^2)$.
# <!-- zh -->
# ## 两个模型：前向与反向并排写
#
# 每个模型都是一个函数 `(params, x, y) -> (loss, grads)`。反向的几行按相反的顺序对应前向的几行：
#
# * 损失在 logits 处的梯度：$G = (p - \text{onehot}(y)) / B$；
# * 线性层 $z = a W + b$：$\partial W = a^\top G$，$\partial b = \sum_i G_i$（偏置在各行上
#   广播，所以它的梯度是各行之和），$\partial a = G W^\top$；
# * $h = \tanh(u)$：$\partial u = \partial h \odot (1 - h^2)$。

# %%
def dlogits_by_hand(logits, y):
    """(softmax(logits) - onehot(y)) / B: the mean cross-entropy's gradient at the logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    probs[np.arange(len(y)), y] -= 1.0
    return probs / len(y)


def softmax_regression(params, x, y):
    logits = x @ params["W"] + params["b"]
    loss = xr.cross_entropy(logits, y)
    dlogits = dlogits_by_hand(logits, y)
    return loss, {"W": x.T @ dlogits, "b": dlogits.sum(axis=0)}


def two_layer_net(params, x, y):
    hidden = np.tanh(x @ params["W1"] + params["b1"])
    logits = hidden @ params["W2"] + params["b2"]
    loss = xr.cross_entropy(logits, y)
    dlogits = dlogits_by_hand(logits, y)
    dhidden = dlogits @ params["W2"].T
    dpre = dhidden * (1.0 - hidden**2)
    return loss, {"W1": x.T @ dpre, "b1": dpre.sum(axis=0),
                  "W2": hidden.T @ dlogits, "b2": dlogits.sum(axis=0)}


def predict(params, x):
    """The predicted class of each row: the largest logit."""
    if "W" in params:
        return (x @ params["W"] + params["b"]).argmax(axis=1)
    return (np.tanh(x @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]).argmax(axis=1)


def initial(model, seed=1, hidden=64):
    rng = np.random.default_rng(seed)
    if model is softmax_regression:
        return {"W": rng.normal(0.0, 0.01, (64, 10)), "b": np.zeros(10)}
    return {"W1": rng.normal(0.0, 1 / np.sqrt(64), (64, hidden)), "b1": np.zeros(hidden),
            "W2": rng.normal(0.0, 0.1 / np.sqrt(hidden), (hidden, 10)), "b2": np.zeros(10)}

# %% [markdown]
# <!-- en -->
# ## Check every gradient before trusting it
#
# On a batch of 32 training images and the initial parameters: each parameter's
# hand-written gradient against central finite differences of the loss (every
# element, in float64), and the gradient at the logits against the library's. The
# measure is CS231n's relative error, the largest difference over the largest
# magnitude: about $10^{-8}$ or less means right, $10^{-2}$ means a bug.
# <!-- zh -->
# ## 先核对每个梯度，再相信它
#
# 在 32 张训练图片组成的批次上、用初始参数：每个参数手写的梯度与损失的中心差分比较（每个元素，
# float64），logits 处的梯度与库的梯度比较。衡量标准是 CS231n 的相对误差：最大差除以最大的
# 绝对值；约 $10^{-8}$ 或更小说明梯度正确，$10^{-2}$ 说明有错。

# %%
x_batch, y_batch = X_train[:32], y_train[:32]
for model in (softmax_regression, two_layer_net):
    params = initial(model)
    loss, grads = model(params, x_batch, y_batch)
    print(model.__name__, _("nb.10.initial_loss"))
    for name in params:
        numeric = central_differences(lambda: model(params, x_batch, y_batch)[0], params[name])
        relative_error("d" + name, grads[name], numeric)

logits = np.tanh(x_batch @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]
relative_error("dlogits", dlogits_by_hand(logits, y_batch), xr.cross_entropy_grad(logits, y_batch))

# %% [markdown]
# <!-- en -->
# ## Training
#
# Minibatch SGD: each epoch visits the training set once in a fresh random order
# (seed 1), in batches of 32, and moves every parameter by `-lr` times its
# gradient. After each epoch we record the loss and the accuracy on the whole
# training set and on the test set. 20 epochs for both, at a learning rate of 0.1
# for softmax regression and 0.2 for the two-layer net.
# <!-- zh -->
# ## 训练
#
# 小批量随机梯度下降：每个轮次（epoch）以新的随机顺序（种子 1）把训练集完整过一遍，每批 32 张，
# 每个参数沿梯度方向移动 `-lr` 倍的梯度。每个轮次结束后，记录整个训练集和测试集上的损失与准确率。
# 两个模型都训练 20 个轮次，softmax 回归的学习率为 0.1，两层网络为 0.2。

# %%
def fit(model, epochs=20, lr=0.1, batch=32, seed=1):
    """Train ``model`` from its initial parameters; the parameters and a history
    of (train loss, test loss, train accuracy, test accuracy) per epoch."""
    params = initial(model)
    rng = np.random.default_rng(seed)
    history = []
    for epoch in range(epochs):
        order = rng.permutation(len(y_train))
        for start in range(0, len(order), batch):
            rows = order[start:start + batch]
            _loss, grads = model(params, X_train[rows], y_train[rows])
            for name in params:
                params[name] -= lr * grads[name]
        history.append((model(params, X_train, y_train)[0], model(params, X_test, y_test)[0],
                        (predict(params, X_train) == y_train).mean(),
                        (predict(params, X_test) == y_test).mean()))
    return params, np.array(history)


results = {}
for model, lr in ((softmax_regression, 0.1), (two_layer_net, 0.2)):
    params, history = fit(model, lr=lr)
    results[model.__name__] = params, history
    print(model.__name__)
    for epoch in (0, 4, 9, 19):
        train_loss, test_loss, train_accuracy, test_accuracy = history[epoch]
        print(_("nb.10.epoch_line"))

accuracy = {name: history[-1, 3] for name, (params, history) in results.items()}
for name, value in accuracy.items():
    print(_("nb.10.final_test_accuracy"))
assert min(accuracy.values()) >= 0.95

# %% [markdown]
# <!-- en -->
# ## Loss and accuracy curves
#
# Both models learn fast: one pass over the data already gives about 90%. Softmax
# regression, a linear classifier, levels off about a point below the two-layer net,
# whose hidden layer lets it bend the class boundaries. The gap
# between the training and the test curves is what the model learnt about these
# particular images rather than about digits.
# <!-- zh -->
# ## 损失与准确率曲线
#
# 两个模型都学得很快：过一遍数据就已经有约 90% 的准确率。softmax 回归是线性分类器，最终比两层
# 网络低约一个百分点；两层网络的隐藏层让它能把类别边界弯曲。训练曲线与测试曲线之间的
# 差距，是模型学到的关于这些具体图片、而非关于数字本身的东西。

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
epochs = np.arange(1, 21)
for (name, (params, history)), color in zip(results.items(), ("tab:blue", "tab:orange")):
    left.plot(epochs, history[:, 0], color=color, label=_("nb.10.plot_train"))
    left.plot(epochs, history[:, 1], color=color, linestyle="--", label=_("nb.10.plot_test"))
    right.plot(epochs, 100 * history[:, 2], color=color, label=_("nb.10.plot_train"))
    right.plot(epochs, 100 * history[:, 3], color=color, linestyle="--", label=_("nb.10.plot_test"))
left.set_yscale("log")
left.set_xlabel(_("nb.10.plot_epoch"))
left.set_ylabel(_("nb.10.plot_loss"))
right.set_xlabel(_("nb.10.plot_epoch"))
right.set_ylabel(_("nb.10.plot_accuracy"))
right.axhline(95, color="gray", linewidth=0.8)
right.legend(fontsize=8)
fig.tight_layout()
plt.show()
