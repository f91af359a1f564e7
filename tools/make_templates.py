"""Write the built-in templates (resources/templates/*.nsd) from the Python below.

The design files are generated so that a change to a template is reviewed as
code: edit this script, run it, and commit both.  Each layer is created by
Keras from the arguments given here and only those arguments are stored (in
Keras's own normalised form, e.g. ``kernel_size`` as ``[3, 3]``), so the files
stay short and do not pin every default of today's Keras release.  The script
checks that every template builds before writing anything.

Usage::

    python tools/make_templates.py            # (re)write resources/templates
    python tools/make_templates.py --check    # fail if the files differ from what this script writes
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from neuralstudio.core.design import Design  # noqa: E402
from neuralstudio.core.graph import INPUT_CLASS, Graph  # noqa: E402
from neuralstudio.core.paths import templates_dir  # noqa: E402
from neuralstudio.core.training_settings import TrainingSettings  # noqa: E402

ROW = 132.0  # vertical distance between layers (the editor: 78 px node + 54 px gap)
COL = 250.0  # horizontal distance between side-by-side branches (210 px node + 40 px gap)


def layer_config(class_name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The given arguments as Keras normalises them in ``get_config()``; raises if Keras refuses them."""
    import keras

    if class_name == INPUT_CLASS:
        return {"batch_shape": [None, *kwargs["shape"]]}
    layer = getattr(keras.layers, class_name)(**kwargs)
    full = layer.get_config()
    missing = sorted(set(kwargs) - set(full))
    if missing:
        raise ValueError(f"{class_name} does not report {missing} in get_config()")
    return {k: _jsonable(full[k]) for k in kwargs}


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    return v


class Builder:
    """Adds layers top to bottom: each new layer goes one row below its lowest input."""

    def __init__(self) -> None:
        self.graph = Graph()
        self.rows: dict[str, float] = {}

    def add(self, class_name: str, name: str, inputs: list[str] | None = None, *, x: float = 0.0,
            row: float | None = None, **kwargs: Any) -> str:
        inputs = inputs or []
        if row is None:
            row = max((self.rows[i] for i in inputs), default=-1.0) + 1.0
        node = self.graph.add_node(class_name, layer_config(class_name, kwargs), name=name,
                                   pos=(x * COL, row * ROW))
        self.rows[node.id] = row
        for i in inputs:
            self.graph.connect(i, node.id)
        return node.id

    def chain(self, start: str, layers: list[tuple[str, str, dict[str, Any]]], x: float = 0.0) -> str:
        cur = start
        for class_name, name, kwargs in layers:
            cur = self.add(class_name, name, [cur], x=x, **kwargs)
        return cur


def design(name: str, title: str, description: str, builder: Builder, **training: Any) -> tuple[str, Design]:
    settings = TrainingSettings(**training)
    settings.validate()
    return name, Design(graph=builder.graph, training=settings, data={"source": "mnist-sample"},
                        name=title, description=" ".join(description.split()))


# --------------------------------------------------------------------------- the templates
def nielsen() -> tuple[str, Design]:
    b = Builder()
    x = b.add("InputLayer", "pixels", shape=(784,))
    x = b.add("Dense", "hidden", [x], units=30, activation="sigmoid")
    b.add("Dense", "digit", [x], units=10, activation="sigmoid")
    return design(
        "nielsen-784-30-10", "Nielsen's 784-30-10 network",
        """The network of chapter 1 of Michael Nielsen's "Neural Networks and Deep Learning": 784 input
        pixels, one hidden layer of 30 sigmoid neurons and 10 sigmoid outputs, one per digit, trained by plain
        stochastic gradient descent (learning rate 3.0, mini-batches of 10, 30 epochs) on his quadratic cost,
        half the squared distance between the output and the one-hot target, summed over the ten outputs (so
        the learning rate means what it means in the book: Keras's mean squared error averages over the outputs
        and would step 5x less). It teaches what a neuron, a layer, a cost and gradient
        descent are with nothing else in the way. It reaches about 95% on the full MNIST and about 93% on the
        8,000 training images of the MNIST sample; compare it with the convolutional templates to see what
        architecture buys.""",
        b, optimizer="sgd", learning_rate=3.0, batch_size=10, epochs=30, loss="quadratic",
    )


def _nielsen_deep(activation: str, initializer: Any, bias_initializer: Any = None,
                  output_initializer: Any = "lecun_normal") -> Builder:
    """784-30-30-30-10: the deeper network of Nielsen's chapter 5, with ``activation`` in the hidden layers."""
    b = Builder()
    biases = {} if bias_initializer is None else {"bias_initializer": bias_initializer}
    x = b.add("InputLayer", "pixels", shape=(784,))
    for i in (1, 2, 3):
        x = b.add("Dense", f"hidden_{i}", [x], units=30, activation=activation, kernel_initializer=initializer,
                  **biases)
    b.add("Dense", "digit", [x], units=10, activation="sigmoid", kernel_initializer=output_initializer, **biases)
    return b


def _nielsen_initializers() -> dict[str, Any]:
    """The start of Nielsen's network2 (``default_weight_initializer``), which his chapter 5 trains: weights
    from N(0, 1/inputs), untruncated, and biases from N(0, 1)."""
    import keras

    weights = keras.initializers.VarianceScaling(1.0, mode="fan_in", distribution="untruncated_normal")
    return {"initializer": weights, "output_initializer": weights,
            "bias_initializer": keras.initializers.RandomNormal(mean=0.0, stddev=1.0)}


#: Nielsen's chapter 5 settings: SGD, mini-batches of 10, the cross-entropy cost on sigmoid outputs. Keras's
#: binary cross-entropy averages over the 10 outputs where Nielsen sums them, so his eta = 0.1 is 1.0 here.
NIELSEN_DEEP = {"optimizer": "sgd", "learning_rate": 1.0, "batch_size": 10, "epochs": 30,
                "loss": "binary_crossentropy"}


def nielsen_deep_sigmoid() -> tuple[str, Design]:
    return design(
        "nielsen-deep-sigmoid", "Nielsen's deep sigmoid network (vanishing gradients)",
        """The deeper network of chapter 5 of Michael Nielsen's "Neural Networks and Deep Learning": 784 input pixels,
        three hidden layers of 30 sigmoid neurons and 10 sigmoid outputs, started as the book's network2 starts it
        (weights from a normal distribution with standard deviation 1/sqrt(inputs), biases from a standard normal),
        trained by stochastic gradient descent on the cross-entropy cost (mini-batches of 10; learning rate 1.0,
        which is Nielsen's 0.1 because Keras averages the cost over the 10 outputs where he sums it; without his L2
        regularisation). It shows why deep networks were hard to train: each sigmoid multiplies the gradient by at
        most 1/4 on its way back, so the first layer learns far more slowly than the last. Train it with layer
        statistics on (Per-layer signals in the Train window, or neuralstudio train --layer-stats) beside its twin
        nielsen-deep-relu and compare the gradient per unit: the root mean square of each layer's bias gradient,
        Nielsen's delta, his measure of how fast a layer learns. Measured on the MNIST sample (neuralstudio train
        nielsen-deep-sigmoid.nsd --epochs 1 --layer-stats --json --seed S, seeds 42, 1, 2 and 3): after one epoch
        the first hidden layer's gradient per unit is 113 to 165 times smaller than the output layer's (152 times
        with the stored seed: 2.9e-05 against 4.3e-03), and 152 to 254 times at initialisation; the network is still
        at 10-11% test accuracy. In the ReLU twin the two are within 1.4 times of each other (0.7 to 1.2) and it
        reaches 84-90%. Between the hidden layers alone, the comparison the book makes, the third layer's bias
        gradient norm is 20 to 27 times the first's at initialisation (24 times in the book). The kernel gradient
        norm (grad_norm) shows less, 17 to 23 times after one epoch, because it also grows with the number of
        weights: 784 x 30 in the first layer, 30 x 10 in the last. The sigmoid network does learn in the end, as the
        gap closes: with the stored seed it is 38 times after the second epoch and 10 after the third, and test
        accuracy is 91% after 12 epochs.""",
        _nielsen_deep("sigmoid", **_nielsen_initializers()), **NIELSEN_DEEP,
    )


def nielsen_deep_relu() -> tuple[str, Design]:
    return design(
        "nielsen-deep-relu", "Nielsen's deep network with ReLU (gradients that reach every layer)",
        """The twin of nielsen-deep-sigmoid: the same 784-30-30-30-10 network, cost, optimiser and settings, with ReLU
        instead of sigmoid in the three hidden layers and He initialisation (weights with standard deviation
        sqrt(2/inputs), which keeps the size of the signal the same through ReLU layers; biases start at zero). A
        ReLU passes the gradient unchanged wherever it is active, so the first layer learns about as fast as the
        last: the cure for vanishing gradients that made deep networks trainable. Train both with layer statistics
        on (Per-layer signals in the Train window, or neuralstudio train --layer-stats) and compare the gradient per
        unit (the root mean square of each layer's bias gradient, Nielsen's delta). Measured on the MNIST sample
        (neuralstudio train nielsen-deep-relu.nsd --epochs 1 --layer-stats --json --seed S, seeds 42, 1, 2 and 3):
        after one epoch the output layer's gradient per unit is 0.7 to 1.2 times the first hidden layer's (1.2 times
        with the stored seed: 2.1e-03 against 1.8e-03; 3 to 7 times at initialisation, before the output layer has
        learned how often each digit comes) and test accuracy is 84-90%, while in the sigmoid twin the first layer's
        gradient per unit is 113 to 165 times smaller than the last's and accuracy is still 10-11%. The kernel
        gradient norm (grad_norm) of the first layer is 1.5 to 2.9 times the last's here: it grows with the first
        layer's 784 x 30 weights.""",
        _nielsen_deep("relu", "he_normal"), **NIELSEN_DEEP,
    )


def mlp() -> tuple[str, Design]:
    b = Builder()
    x = b.add("InputLayer", "image", shape=(28, 28))
    b.chain(x, [
        ("Flatten", "flatten", {}),
        ("Dense", "dense_256", {"units": 256, "activation": "relu"}),
        ("Dropout", "dropout_1", {"rate": 0.3}),
        ("Dense", "dense_128", {"units": 128, "activation": "relu"}),
        ("Dropout", "dropout_2", {"rate": 0.3}),
        ("Dense", "digit", {"units": 10, "activation": "softmax"}),
    ])
    return design(
        "mlp", "Multilayer perceptron (ReLU + dropout)",
        """A fully connected network the modern way: the 28x28 image is flattened into 784 numbers and passed
        through two ReLU layers (256 and 128 units), each followed by dropout, to a softmax over the 10 digits,
        trained with Adam on the cross-entropy loss. Compared with Nielsen's network it shows what ReLU,
        softmax with cross-entropy, Adam and dropout change: faster training and higher accuracy (about 95% on
        the MNIST sample, more on the full MNIST), but no notion that neighbouring pixels belong together.""",
        b, optimizer="adam", learning_rate=0.001, batch_size=128, epochs=15,
    )


def mnist_cnn() -> tuple[str, Design]:
    b = Builder()
    x = b.add("InputLayer", "image", shape=(28, 28, 1))
    b.chain(x, [
        ("Conv2D", "conv_32a", {"filters": 32, "kernel_size": 3, "activation": "relu"}),
        ("Conv2D", "conv_32b", {"filters": 32, "kernel_size": 3, "activation": "relu"}),
        ("MaxPooling2D", "pool_1", {"pool_size": 2}),
        ("Conv2D", "conv_64a", {"filters": 64, "kernel_size": 3, "activation": "relu"}),
        ("Conv2D", "conv_64b", {"filters": 64, "kernel_size": 3, "activation": "relu"}),
        ("MaxPooling2D", "pool_2", {"pool_size": 2}),
        ("Flatten", "flatten", {}),
        ("Dropout", "dropout", {"rate": 0.5}),
        ("Dense", "digit", {"units": 10, "activation": "softmax"}),
    ])
    return design(
        "mnist-cnn", "MNIST convnet",
        """The Keras "simple MNIST convnet", made a little deeper: two blocks of two 3x3 convolutions (32,
        then 64 filters) each followed by 2x2 max pooling, then dropout and a softmax over the 10 digits, about
        75,000 parameters. Convolutions reuse the same small filters at every position, so the network learns
        strokes and corners wherever they are, and stacking two before each pooling lets it see larger shapes
        (with only the 8,000 training images of the MNIST sample the single-convolution original scores just
        under 98% on the test images, this one just over). It trains in a few minutes on a laptop. The
        default template: a good first network to train, inspect and draw digits for.""",
        b, optimizer="adam", learning_rate=0.001, batch_size=64, epochs=15,
    )


def lenet5() -> tuple[str, Design]:
    b = Builder()
    x = b.add("InputLayer", "image", shape=(28, 28, 1))
    b.chain(x, [
        ("Conv2D", "c1", {"filters": 6, "kernel_size": 5, "padding": "same", "activation": "relu"}),
        ("AveragePooling2D", "s2", {"pool_size": 2}),
        ("Conv2D", "c3", {"filters": 16, "kernel_size": 5, "activation": "relu"}),
        ("AveragePooling2D", "s4", {"pool_size": 2}),
        ("Flatten", "flatten", {}),
        ("Dense", "f5", {"units": 120, "activation": "relu"}),
        ("Dense", "f6", {"units": 84, "activation": "relu"}),
        ("Dense", "digit", {"units": 10, "activation": "softmax"}),
    ])
    return design(
        "lenet5", "LeNet-5",
        """LeCun's LeNet-5 (1998), the network that first read handwritten digits for real: 5x5 convolutions
        with 6 and then 16 filters, each followed by 2x2 average pooling ("subsampling"), then fully connected
        layers of 120 and 84 units and 10 outputs. The original used tanh and a 32x32 input; here the first
        convolution pads the 28x28 image ('same') to the same effect and ReLU replaces tanh so it trains quickly
        with Adam. It shows the classic convolution-pooling-dense pattern in its historical form.""",
        b, optimizer="adam", learning_rate=0.001, batch_size=128, epochs=15,
    )


def _conv_bn_relu(b: Builder, x: str, filters: int, tag: str) -> str:
    return b.chain(x, [
        ("Conv2D", f"conv_{tag}", {"filters": filters, "kernel_size": 3, "padding": "same", "use_bias": False}),
        # momentum 0.9, not Keras's 0.99: with ~60 steps an epoch on the MNIST sample, 0.99 leaves the
        # moving statistics unsettled for ~8 epochs and the validation curve at chance meanwhile.
        ("BatchNormalization", f"bn_{tag}", {"momentum": 0.9}),
        ("Activation", f"relu_{tag}", {"activation": "relu"}),
    ])


def cnn_augmented() -> tuple[str, Design]:
    b = Builder()
    x = b.add("InputLayer", "image", shape=(28, 28, 1))
    x = b.chain(x, [
        ("RandomRotation", "rotate", {"factor": 0.08, "fill_mode": "constant"}),
        ("RandomTranslation", "shift", {"height_factor": 0.1, "width_factor": 0.1, "fill_mode": "constant"}),
        ("RandomZoom", "zoom", {"height_factor": 0.15, "fill_mode": "constant"}),
    ])
    x = _conv_bn_relu(b, x, 32, "1a")
    x = _conv_bn_relu(b, x, 32, "1b")
    x = b.chain(x, [("MaxPooling2D", "pool_1", {"pool_size": 2}), ("Dropout", "dropout_1", {"rate": 0.25})])
    x = _conv_bn_relu(b, x, 64, "2a")
    x = _conv_bn_relu(b, x, 64, "2b")
    x = b.chain(x, [("MaxPooling2D", "pool_2", {"pool_size": 2}), ("Dropout", "dropout_2", {"rate": 0.25})])
    b.chain(x, [
        ("Flatten", "flatten", {}),
        ("Dense", "dense_128", {"units": 128, "use_bias": False}),
        ("BatchNormalization", "bn_dense", {"momentum": 0.9}),
        ("Activation", "relu_dense", {"activation": "relu"}),
        ("Dropout", "dropout_3", {"rate": 0.5}),
        ("Dense", "digit", {"units": 10, "activation": "softmax"}),
    ])
    return design(
        "cnn-augmented", "Augmented CNN for hand-drawn digits",
        """A deeper convnet built to recognise the digits you draw, not just MNIST's: during training every
        image is randomly rotated, shifted and zoomed (the Random* layers are active only while training, so
        prediction sees your drawing unchanged), which teaches the network that a digit off-centre or tilted is
        still the same digit. Pairs of 3x3 convolutions with batch normalisation and ReLU, max pooling and
        dropout follow, as in modern image networks. It trains more slowly than mnist-cnn and may score a
        little lower on the tidy test images, but it copes far better with real handwriting.""",
        b, optimizer="adam", learning_rate=0.001, batch_size=128, epochs=30,
    )


def lstm_rows() -> tuple[str, Design]:
    b = Builder()
    x = b.add("InputLayer", "rows", shape=(28, 28))
    b.chain(x, [
        ("LSTM", "lstm", {"units": 128}),
        ("Dense", "digit", {"units": 10, "activation": "softmax"}),
    ])
    return design(
        "lstm-rows", "LSTM reading rows",
        """A recurrent network that reads the image as a sequence: the 28 rows of pixels, top to bottom, are fed
        one at a time to an LSTM with 128 units, whose memory after the last row is classified by a softmax
        layer. It shows how recurrent layers carry information along a sequence (text, sound, time series) and
        that a digit can be recognised that way too, though it trains more slowly than a convnet.""",
        b, optimizer="adam", learning_rate=0.001, batch_size=128, epochs=15,
    )


def transformer_patches() -> tuple[str, Design]:
    b = Builder()
    x = b.add("InputLayer", "image", shape=(28, 28, 1))
    patches = b.add("Conv2D", "patch_embed", [x], filters=64, kernel_size=4, strides=4)
    pos = b.add("DepthwiseConv2D", "position", [patches], x=1, kernel_size=3, padding="same")
    emb = b.add("Add", "add_position", [patches, pos])
    tokens = b.add("Reshape", "tokens", [emb], target_shape=(49, 64))
    norm1 = b.add("LayerNormalization", "norm_1", [tokens], x=1)
    att = b.add("MultiHeadAttention", "attention", [norm1, norm1], x=1, num_heads=4, key_dim=16)
    res1 = b.add("Add", "residual_1", [tokens, att])
    ff = b.chain(res1, [
        ("LayerNormalization", "norm_2", {}),
        ("Dense", "mlp_expand", {"units": 128, "activation": "gelu"}),
        ("Dense", "mlp_project", {"units": 64}),
    ], x=1)
    res2 = b.add("Add", "residual_2", [res1, ff])
    b.chain(res2, [
        ("GlobalAveragePooling1D", "pool", {}),
        ("Dense", "digit", {"units": 10, "activation": "softmax"}),
    ])
    return design(
        "transformer-patches", "Transformer over image patches",
        """A small vision transformer: a 4x4 convolution with stride 4 cuts the image into 7x7 = 49 patches and
        embeds each as 64 numbers; a 3x3 depthwise convolution added to them tells each patch where it is
        (a convolutional position encoding). One transformer encoder block follows: layer normalisation,
        4-head self-attention (query and value both from the same tokens, so every patch can look at every
        other), a residual connection, then a two-layer GELU MLP with another residual. Averaging the tokens
        and a softmax give the digit. It shows attention and residual streams, the building blocks of
        today's language and vision models, and also their appetite for data: on the 8,000 images of the
        MNIST sample it reaches only about 92% in 20 epochs, where a convnet passes 98%; give it the full
        MNIST to see it catch up.""",
        b, optimizer="adam", learning_rate=0.001, batch_size=128, epochs=20,
    )


def _residual_block(b: Builder, x: str, in_filters: int, filters: int, tag: str, stride: int = 1) -> str:
    project = stride != 1 or in_filters != filters
    y = b.chain(x, [
        ("Conv2D", f"{tag}_conv_a", {"filters": filters, "kernel_size": 3, "strides": stride, "padding": "same",
                                     "use_bias": False}),
        ("BatchNormalization", f"{tag}_bn_a", {}),
        ("Activation", f"{tag}_relu_a", {"activation": "relu"}),
        ("Conv2D", f"{tag}_conv_b", {"filters": filters, "kernel_size": 3, "padding": "same", "use_bias": False}),
        ("BatchNormalization", f"{tag}_bn_b", {}),
    ], x=1)  # the residual branch sits beside the trunk, so the skip connection stays visible
    skip = x
    if project:
        skip = b.chain(x, [
            ("Conv2D", f"{tag}_project", {"filters": filters, "kernel_size": 1, "strides": stride,
                                          "use_bias": False}),
            ("BatchNormalization", f"{tag}_bn_project", {}),
        ])
    out = b.add("Add", f"{tag}_add", [y, skip])
    return b.add("Activation", f"{tag}_out", [out], activation="relu")


def resnet_mini() -> tuple[str, Design]:
    b = Builder()
    x = b.add("InputLayer", "image", shape=(28, 28, 1))
    x = _conv_bn_relu(b, x, 32, "stem")
    x = _residual_block(b, x, 32, 32, "block1")
    x = _residual_block(b, x, 32, 64, "block2", stride=2)
    x = _residual_block(b, x, 64, 128, "block3", stride=2)
    b.chain(x, [
        ("GlobalAveragePooling2D", "pool", {}),
        ("Dense", "digit", {"units": 10, "activation": "softmax"}),
    ])
    return design(
        "resnet-mini", "Mini ResNet",
        """A small residual network (He et al., 2015): a convolutional stem, then three residual blocks of
        32, 64 and 128 filters. Each block computes convolution, batch normalisation, ReLU, convolution and
        batch normalisation, and adds its input back through a skip connection (a 1x1 convolution projects the
        input where the number of channels or the resolution changes). Skip connections let gradients flow
        through deep networks, which is why nearly every modern image model uses them. Global average
        pooling replaces Flatten before the softmax.""",
        b, optimizer="adam", learning_rate=0.001, batch_size=128, epochs=10,
    )


TEMPLATES: list[Callable[[], tuple[str, Design]]] = [
    mnist_cnn, nielsen, mlp, lenet5, cnn_augmented, lstm_rows, transformer_patches, resnet_mini,
    nielsen_deep_sigmoid, nielsen_deep_relu,
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare with the files on disk")
    parser.add_argument("--out", type=Path, default=templates_dir(), help="folder to write (default: %(default)s)")
    args = parser.parse_args(argv)

    from neuralstudio.ml.builder import analyze

    stale = []
    for make in TEMPLATES:
        name, d = make()
        result = analyze(d.graph)
        errors = [p.message for p in result.problems if p.severity == "error"]
        if errors or result.model is None:
            print(f"{name}: does not build: {errors}", file=sys.stderr)
            return 1
        path = args.out / f"{name}.nsd"
        text = d.dumps()
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
            continue
        d.save(path)
        print(f"{path}: {len(d.graph)} layers, {result.model.count_params():,} parameters")
    if stale:
        print("out of date: " + ", ".join(stale) + " (run tools/make_templates.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
