"""The numpy core: tokenizers, the model, generation, sampling, quantization, training.

Imports only numpy, tiktoken and safetensors — never Textual or Rich — so it can be used
(and tested) on its own.
"""
