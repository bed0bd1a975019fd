"""Training-time augmentation, on batches of float images in [0, 1], in TensorFlow ops.

Geometry (as the seed had): rotation, shift, flip, zoom, shear, in one random affine transform per cell.
Colour (what helps across patients, whose smears were stained and photographed differently): hue,
saturation and brightness jitter, per-channel gain (stain intensity) and gamma. Black stays black, so
the background around a cropped cell is unchanged.
"""

from __future__ import annotations

import math

import tensorflow as tf


def random_affine(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    batch = tf.shape(images)[0]
    size = tf.cast(tf.shape(images)[1], tf.float32)
    seeds = tf.random.experimental.stateless_split(seed, 6)

    def uniform(index, low, high):
        return tf.random.stateless_uniform([batch], seeds[index], low, high)

    angle = uniform(0, -math.pi, math.pi)
    shear = uniform(1, -0.15, 0.15)
    zoom = uniform(2, 0.9, 1.1)
    flip = tf.where(uniform(3, 0.0, 1.0) < 0.5, -1.0, 1.0)
    shift = tf.random.stateless_uniform([batch, 2], seeds[4], -0.08, 0.08) * size
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Output -> input mapping about the centre: [a0 a1 a2; b0 b1 b2].
    a0 = cos / zoom * flip
    a1 = (-sin + shear) / zoom
    b0 = sin / zoom * flip
    b1 = (cos + shear) / zoom
    centre = (size - 1.0) / 2.0
    a2 = centre - a0 * centre - a1 * centre + shift[:, 0]
    b2 = centre - b0 * centre - b1 * centre + shift[:, 1]
    zeros = tf.zeros_like(a0)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def random_colour(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    batch = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed, 5)
    hsv = tf.image.rgb_to_hsv(images)
    hue = tf.random.stateless_uniform([batch, 1, 1], seeds[0], -0.04, 0.04)
    saturation = tf.random.stateless_uniform([batch, 1, 1], seeds[1], 0.7, 1.3)
    value = tf.random.stateless_uniform([batch, 1, 1], seeds[2], 0.8, 1.2)
    h = tf.math.floormod(hsv[..., 0] + hue, 1.0)
    s = tf.clip_by_value(hsv[..., 1] * saturation, 0.0, 1.0)
    v = tf.clip_by_value(hsv[..., 2] * value, 0.0, 1.0)
    images = tf.image.hsv_to_rgb(tf.stack([h, s, v], axis=-1))
    gain = tf.random.stateless_uniform([batch, 1, 1, 3], seeds[3], 0.9, 1.1)
    gamma = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[4], 0.8, 1.25)
    return tf.clip_by_value(tf.pow(tf.clip_by_value(images * gain, 1e-6, 1.0), gamma), 0.0, 1.0)


def augment(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    geometry_seed, colour_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    return random_colour(random_affine(images, geometry_seed), colour_seed)


def mixup(images: tf.Tensor, labels: tf.Tensor, alpha: float, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Mixup (Zhang et al. 2018): each cell blended with another of the batch, its label likewise.

    The weight is Beta(alpha, alpha) per cell, drawn as a ratio of two Gamma draws (TensorFlow has no
    stateless Beta); the partner is the batch reversed, which the shuffle has already made random.
    """
    batch = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    a = tf.random.stateless_gamma([batch], seeds[0], alpha)
    b = tf.random.stateless_gamma([batch], seeds[1], alpha)
    weight = a / (a + b + 1e-12)
    partner_images, partner_labels = tf.reverse(images, [0]), tf.reverse(labels, [0])
    mixed = weight[:, None, None, None] * images + (1.0 - weight[:, None, None, None]) * partner_images
    return mixed, weight * labels + (1.0 - weight) * partner_labels
