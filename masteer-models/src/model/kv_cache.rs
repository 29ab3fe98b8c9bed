//! Key/value cache: per block, keys and values of every past column, preallocated
//! and grown by doubling.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Keys and values of all blocks, `[batch, kv_heads, capacity, head_dim]` each.
#[derive(Clone, Debug)]
pub struct KvCache<B: Backend> {
    k: Vec<Tensor<B, 4>>,
    v: Vec<Tensor<B, 4>>,
    len: usize,
    cap: usize,
}

#[cfg_attr(not(feature = "cpu"), allow(dead_code))] // used by the CPU kernels only
impl<B: Backend> KvCache<B> {
    /// An empty cache for `layers` blocks with room for `cap` columns.
    pub fn new(
        layers: usize,
        batch: usize,
        kv_heads: usize,
        head_dim: usize,
        cap: usize,
        device: &B::Device,
    ) -> Self {
        let cap = cap.max(1);
        let z = || Tensor::zeros([batch, kv_heads, cap, head_dim], device);
        KvCache {
            k: (0..layers).map(|_| z()).collect(),
            v: (0..layers).map(|_| z()).collect(),
            len: 0,
            cap,
        }
    }

    /// Columns filled so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no column is filled.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Write `t` new columns for block `layer` at the end and return all keys and
    /// values so far (`[batch, kv_heads, len + t, head_dim]`). Call [`KvCache::advance`]
    /// once every block has been written.
    pub fn append(
        &mut self,
        layer: usize,
        k_new: Tensor<B, 4>,
        v_new: Tensor<B, 4>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let [b, h, t, d] = k_new.dims();
        let end = self.len + t;
        if end > self.cap {
            self.grow(end);
        }
        let range = [0..b, 0..h, self.len..end, 0..d];
        let k = std::mem::replace(
            &mut self.k[layer],
            Tensor::empty([0, 0, 0, 0], &k_new.device()),
        );
        self.k[layer] = k.slice_assign(range.clone(), k_new);
        let v = std::mem::replace(
            &mut self.v[layer],
            Tensor::empty([0, 0, 0, 0], &v_new.device()),
        );
        self.v[layer] = v.slice_assign(range, v_new);
        (
            self.k[layer].clone().narrow(2, 0, end),
            self.v[layer].clone().narrow(2, 0, end),
        )
    }

    /// Columns the cache can hold before it grows.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Grow so that `need` columns fit.
    pub(crate) fn reserve(&mut self, need: usize) {
        if need > self.cap {
            self.grow(need);
        }
    }

    /// Take the key and value tensors of block `layer` out (to write them in place);
    /// put them back with [`KvCache::put_layer`].
    pub(crate) fn take_layer(&mut self, layer: usize) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let device = self.k[layer].device();
        let k = std::mem::replace(&mut self.k[layer], Tensor::empty([0, 0, 0, 0], &device));
        let v = std::mem::replace(&mut self.v[layer], Tensor::empty([0, 0, 0, 0], &device));
        (k, v)
    }

    /// Put back what [`KvCache::take_layer`] took.
    pub(crate) fn put_layer(&mut self, layer: usize, k: Tensor<B, 4>, v: Tensor<B, 4>) {
        self.k[layer] = k;
        self.v[layer] = v;
    }

    /// Mark `t` more columns as filled.
    pub fn advance(&mut self, t: usize) {
        self.len += t;
    }

    /// Stack `other`'s sequences under this cache's. Both are aligned on their last
    /// filled column: the shorter one is shifted right by zero (padding) columns.
    /// Returns the padding added in front of this cache's and `other`'s sequences.
    /// Room for `reserve` more columns is kept.
    pub(crate) fn join(&mut self, other: KvCache<B>, reserve: usize) -> (usize, usize) {
        let len = self.len.max(other.len);
        let cap = len + reserve.max(1);
        let shift = (len - self.len, len - other.len);
        for layer in 0..self.k.len() {
            for (mine, theirs) in [
                (&mut self.k, other.k[layer].clone()),
                (&mut self.v, other.v[layer].clone()),
            ] {
                let a = realign(mine[layer].clone(), self.len, shift.0, cap);
                let b = realign(theirs, other.len, shift.1, cap);
                mine[layer] = Tensor::cat(vec![a, b], 0);
            }
        }
        self.len = len;
        self.cap = cap;
        shift
    }

    /// Keep the sequences `rows` (in that order) and drop the first `front` columns
    /// (padding of every kept sequence).
    pub(crate) fn retain(&mut self, rows: &[usize], front: usize) {
        let len = self.len - front;
        for store in [&mut self.k, &mut self.v] {
            for t in store.iter_mut() {
                let device = t.device();
                let idx: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
                let index = Tensor::<B, 1, burn::tensor::Int>::from_data(
                    burn::tensor::TensorData::new(idx, [rows.len()]),
                    &device,
                );
                let kept = t.clone().select(0, index);
                *t = realign(kept.narrow(2, front, len), len, 0, self.cap - front);
            }
        }
        self.len = len;
        self.cap -= front;
    }

    fn grow(&mut self, need: usize) {
        let new_cap = need.max(self.cap * 2);
        for layer in 0..self.k.len() {
            for store in [&mut self.k, &mut self.v] {
                let old = store[layer].clone();
                let [b, h, _, d] = old.dims();
                let extra = Tensor::zeros([b, h, new_cap - self.cap, d], &old.device());
                store[layer] = Tensor::cat(vec![old, extra], 2);
            }
        }
        self.cap = new_cap;
    }
}

/// The first `len` columns of `t` with `shift` zero columns in front, zero-filled to
/// `cap` columns.
fn realign<B: Backend>(t: Tensor<B, 4>, len: usize, shift: usize, cap: usize) -> Tensor<B, 4> {
    let [b, h, _, d] = t.dims();
    let device = t.device();
    let mut parts = Vec::with_capacity(3);
    if shift > 0 {
        parts.push(Tensor::zeros([b, h, shift, d], &device));
    }
    if len > 0 {
        parts.push(t.narrow(2, 0, len));
    }
    let tail = cap - shift - len;
    if tail > 0 {
        parts.push(Tensor::zeros([b, h, tail, d], &device));
    }
    Tensor::cat(parts, 2)
}
