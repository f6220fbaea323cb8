// constants.js — GENERATED from include/tilelli.h by scripts/gen-constants.mjs: do not edit.
export const STATUS = Object.freeze({"OK":0,"NULL":-1,"EMPTY":-2,"NON_FINITE":-3,"RANK":-4,"SHAPE":-5,"OVERFLOW":-6,"BAND":-7,"ALPHA":-8,"NO_MEMORY":-9,"ARGUMENT":-10,"FORMAT":-11,"SIZE":-12,"TRIT":-13,"FREED":-14,"PARSE":-15,"VERSION":-16,"DTYPE":-17});
export const MAX_ELEMENTS = Object.freeze(1073741823);
export const MAX_I8_COLS = Object.freeze(16777215);
export const MAX_WIDTH = Object.freeze(1048576);
export const MODEL_VERSION = Object.freeze(2);
export const BUILD_FLAGS = Object.freeze({"SIMD128":1,"RELAXED_SIMD":2,"THREADS":4});
export const QUANTIZER = Object.freeze({"none":0,"per_tensor":1,"per_row":2,"lsq":3,"lsq_paper":4});
export const ACTIVATION = Object.freeze({"none":0,"relu":1,"gelu":2,"silu":3});
export const LOSS = Object.freeze({"cross_entropy":1,"mse":2});
export const OPTIMIZER = Object.freeze({"adam":1,"adamw":2,"sgd":3});
export const SCHEDULE = Object.freeze({"constant":0,"cosine":1});
export const PRECISION = Object.freeze({"default":0,"float":1,"int8":2});
export const GGUF_TYPE = Object.freeze({"tq1_0":34,"tq2_0":35,"i2_s":36});
export const LM_GGUF_VOCAB = Object.freeze(1);
export const DTYPE = Object.freeze({"1":"F32","2":"F16","3":"BF16","4":"I8","5":"U8","6":"F64","7":"I64","8":"I32","9":"I16","10":"U64","11":"U32","12":"U16","13":"BOOL","14":"F8_E4M3","15":"F8_E5M2","16":"F8_E8M0","17":"C64"});
export const UNSIGNED_RESULTS = Object.freeze(["tl_alloc","tl_binary_row_bytes","tl_build_flags","tl_error_detail","tl_fit_epoch","tl_fit_position","tl_format_count","tl_format_name","tl_lm_context","tl_lm_position","tl_lm_vocab_size","tl_matrix_cols","tl_matrix_data_bytes","tl_matrix_rows","tl_matrix_scales","tl_mem_live_blocks","tl_mem_live_bytes","tl_model_input_size","tl_model_layer_count","tl_model_matrix","tl_model_output_size","tl_net_layer_count","tl_net_steps","tl_safetensors_count","tl_safetensors_metadata_count","tl_status_message","tl_status_name","tl_threads","tl_threads_set","tl_version"]);
export const DEADZONE_FIELDS = Object.freeze(["alpha","fracNeg","fracZero","fracPos","fracBoundary","fracZeroInner"]);
