/* The operation table: every operation a graph node can perform.
 *
 * PO_OP_LIST is the single list of ops. Each entry names a definition (shape inference, cost,
 * autodiff rule, CPU kernel) that lives in that op's own file under src/ops/; adding an op
 * means writing that file and adding one line here. Backward kernels are ops of their own so
 * that analysis and planning see forward, backward and optimizer work alike. */
#ifndef PAROPT_OPS_H
#define PAROPT_OPS_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(ENUM_SUFFIX, name) */
#define PO_OP_LIST(X)                                                                                                  \
    X(INPUT, input)   /* data fed each step */                                                                         \
    X(PARAM, param)   /* trainable parameter */                                                                        \
    X(FILL, fill)     /* constant-filled tensor */                                                                     \
    X(MATMUL, matmul) /* batched A @ B with transpose flags */                                                         \
    X(LINEAR, linear) /* x W^T + b */                                                                                  \
    X(SUM_TO, sum_to) /* sum over leading dims to a suffix shape */                                                    \
    X(ADD, add)       /* a + b, b broadcast over leading dims */                                                       \
    X(MUL, mul)       /* a * b, b broadcast over leading dims */                                                       \
    X(SCALE, scale)   /* x * constant */                                                                               \
    X(RELU, relu)                                                                                                      \
    X(RELU_GRAD, relu_grad)                                                                                            \
    X(GELU, gelu) /* exact: x * Phi(x) */                                                                              \
    X(GELU_GRAD, gelu_grad)                                                                                            \
    X(CONV2D, conv2d) /* NCHW, weight OIHW */                                                                          \
    X(CONV2D_GRAD_INPUT, conv2d_grad_input)                                                                            \
    X(CONV2D_GRAD_WEIGHT, conv2d_grad_weight)                                                                          \
    X(CONV2D_GRAD_BIAS, conv2d_grad_bias)                                                                              \
    X(MAX_POOL2D, max_pool2d)                                                                                          \
    X(MAX_POOL2D_GRAD, max_pool2d_grad)                                                                                \
    X(RESHAPE, reshape)       /* view */                                                                               \
    X(TRANSPOSE, transpose)   /* swaps two dims */                                                                     \
    X(SLICE, slice)           /* narrow along one dim */                                                               \
    X(SLICE_GRAD, slice_grad) /* zero-padded inverse of slice */                                                       \
    X(CONCAT, concat)                                                                                                  \
    X(LAYER_NORM, layer_norm) /* over the last dim */                                                                  \
    X(LAYER_NORM_GRAD_INPUT, layer_norm_grad_input)                                                                    \
    X(LAYER_NORM_GRAD_WEIGHT, layer_norm_grad_weight)                                                                  \
    X(EMBEDDING, embedding)                                                                                            \
    X(EMBEDDING_GRAD, embedding_grad)                                                                                  \
    X(SOFTMAX, softmax) /* over the last dim */                                                                        \
    X(SOFTMAX_GRAD, softmax_grad)                                                                                      \
    X(CAUSAL_ATTENTION, causal_attention) /* fused multi-head causal attention */                                      \
    X(CAUSAL_ATTENTION_GRAD, causal_attention_grad)                                                                    \
    X(CROSS_ENTROPY, cross_entropy) /* mean over integer targets */                                                    \
    X(CROSS_ENTROPY_GRAD, cross_entropy_grad)                                                                          \
    X(SGD_STEP, sgd_step)   /* in-place parameter update */                                                            \
    X(ADAM_STEP, adam_step) /* Adam and AdamW, in place */

typedef enum {
#define PO_OP_ENUM(e, name) PO_OP_##e,
    PO_OP_LIST(PO_OP_ENUM)
#undef PO_OP_ENUM
        PO_OP_COUNT
} po_op;

/* Lower-case op name ("conv2d_grad_input"); "?" for an invalid value. */
const char *po_op_name(po_op op);

#ifdef __cplusplus
}
#endif
#endif
