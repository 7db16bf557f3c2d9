import * as $protobuf from "protobufjs";
import Long = require("long");
export namespace onnx {

    interface IAttributeProto {
        name?: (string|null);
        type?: (onnx.AttributeProto.AttributeType|null);
        f?: (number|null);
        i?: (number|Long|null);
        s?: (Uint8Array|null);
        t?: (onnx.ITensorProto|null);
        floats?: (number[]|null);
        ints?: ((number|Long)[]|null);
        strings?: (Uint8Array[]|null);
    }

    class AttributeProto implements IAttributeProto {
        constructor(properties?: onnx.IAttributeProto);
        public name: string;
        public type: onnx.AttributeProto.AttributeType;
        public f: number;
        public i: (number|Long);
        public s: Uint8Array;
        public t?: (onnx.ITensorProto|null);
        public floats: number[];
        public ints: (number|Long)[];
        public strings: Uint8Array[];
        public static encode(message: onnx.IAttributeProto, writer?: $protobuf.Writer): $protobuf.Writer;
        public static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): onnx.AttributeProto;
        public static getTypeUrl(typeUrlPrefix?: string): string;
    }

    namespace AttributeProto {

        enum AttributeType {
            UNDEFINED = 0,
            FLOAT = 1,
            INT = 2,
            STRING = 3,
            TENSOR = 4,
            GRAPH = 5,
            FLOATS = 6,
            INTS = 7,
            STRINGS = 8,
            TENSORS = 9,
            GRAPHS = 10
        }
    }

    interface IValueInfoProto {
        name?: (string|null);
        type?: (onnx.ITypeProto|null);
        docString?: (string|null);
    }

    class ValueInfoProto implements IValueInfoProto {
        constructor(properties?: onnx.IValueInfoProto);
        public name: string;
        public type?: (onnx.ITypeProto|null);
        public docString: string;
        public static encode(message: onnx.IValueInfoProto, writer?: $protobuf.Writer): $protobuf.Writer;
        public static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): onnx.ValueInfoProto;
        public static getTypeUrl(typeUrlPrefix?: string): string;
    }

    interface INodeProto {
        input?: (string[]|null);
        output?: (string[]|null);
        name?: (string|null);
        opType?: (string|null);
        domain?: (string|null);
        attribute?: (onnx.IAttributeProto[]|null);
        docString?: (string|null);
    }

    class NodeProto implements INodeProto {
        constructor(properties?: onnx.INodeProto);
        public input: string[];
        public output: string[];
        public name: string;
        public opType: string;
        public domain: string;
        public attribute: onnx.IAttributeProto[];
        public docString: string;
        public static encode(message: onnx.INodeProto, writer?: $protobuf.Writer): $protobuf.Writer;
        public static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): onnx.NodeProto;
        public static getTypeUrl(typeUrlPrefix?: string): string;
    }

    interface IStringStringEntryProto {
        key?: (string|null);
        value?: (string|null);
    }

    class StringStringEntryProto implements IStringStringEntryProto {
        constructor(properties?: onnx.IStringStringEntryProto);
        public key: string;
        public value: string;
        public static encode(message: onnx.IStringStringEntryProto, writer?: $protobuf.Writer): $protobuf.Writer;
        public static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): onnx.StringStringEntryProto;
        public static getTypeUrl(typeUrlPrefix?: string): string;
    }

    interface IModelProto {
        irVersion?: (number|Long|null);
        opsetImport?: (onnx.IOperatorSetIdProto[]|null);
        producerName?: (string|null);
        producerVersion?: (string|null);
        domain?: (string|null);
        modelVersion?: (number|Long|null);
        docString?: (string|null);
        graph?: (onnx.IGraphProto|null);
        metadataProps?: (onnx.IStringStringEntryProto[]|null);
    }

    class ModelProto implements IModelProto {
        constructor(properties?: onnx.IModelProto);
        public irVersion: (number|Long);
        public opsetImport: onnx.IOperatorSetIdProto[];
        public producerName: string;
        public producerVersion: string;
        public domain: string;
        public modelVersion: (number|Long);
        public docString: string;
        public graph?: (onnx.IGraphProto|null);
        public metadataProps: onnx.IStringStringEntryProto[];
        public static encode(message: onnx.IModelProto, writer?: $protobuf.Writer): $protobuf.Writer;
        public static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): onnx.ModelProto;
        public static getTypeUrl(typeUrlPrefix?: string): string;
    }

    interface IGraphProto {
        node?: (onnx.INodeProto[]|null);
        name?: (string|null);
        initializer?: (onnx.ITensorProto[]|null);
        docString?: (string|null);
        input?: (onnx.IValueInfoProto[]|null);
        output?: (onnx.IValueInfoProto[]|null);
        valueInfo?: (onnx.IValueInfoProto[]|null);
    }

    class GraphProto implements IGraphProto {
        constructor(properties?: onnx.IGraphProto);
        public node: onnx.INodeProto[];
        public name: string;
        public initializer: onnx.ITensorProto[];
        public docString: string;
        public input: onnx.IValueInfoProto[];
        public output: onnx.IValueInfoProto[];
        public valueInfo: onnx.IValueInfoProto[];
        public static encode(message: onnx.IGraphProto, writer?: $protobuf.Writer): $protobuf.Writer;
        public static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): onnx.GraphProto;
        public static getTypeUrl(typeUrlPrefix?: string): string;
    }

    interface ITensorProto {
        dims?: ((number|Long)[]|null);
        dataType?: (number|null);
        floatData?: (number[]|null);
        int32Data?: (number[]|null);
        int64Data?: ((number|Long)[]|null);
        name?: (string|null);
        docString?: (string|null);
        rawData?: (Uint8Array|null);
        externalData?: (onnx.IStringStringEntryProto[]|null);
        dataLocation?: (onnx.TensorProto.DataLocation|null);
        doubleData?: (number[]|null);
    }

    class TensorProto implements ITensorProto {
        constructor(properties?: onnx.ITensorProto);
        public dims: (number|Long)[];
        public dataType: number;
        public floatData: number[];
        public int32Data: number[];
        public int64Data: (number|Long)[];
        public name: string;
        public docString: string;
        public rawData: Uint8Array;
        public externalData: onnx.IStringStringEntryProto[];
        public dataLocation: onnx.TensorProto.DataLocation;
        public doubleData: number[];
        public static encode(message: onnx.ITensorProto, writer?: $protobuf.Writer): $protobuf.Writer;
        public static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): onnx.TensorProto;
        public static getTypeUrl(typeUrlPrefix?: string): string;
    }

    namespace TensorProto {

        enum DataType {
            UNDEFINED = 0,
            FLOAT = 1,
            UINT8 = 2,
            INT8 = 3,
            UINT16 = 4,
            INT16 = 5,
            INT32 = 6,
            INT64 = 7,
            STRING = 8,
            BOOL = 9,
            FLOAT16 = 10,
            DOUBLE = 11,
            UINT32 = 12,
            UINT64 = 13,
            BFLOAT16 = 16
        }

        enum DataLocation {
            DEFAULT = 0,
            EXTERNAL = 1
        }
    }

    interface ITensorShapeProto {
        dim?: (onnx.TensorShapeProto.IDimension[]|null);
    }

    class TensorShapeProto implements ITensorShapeProto {
        constructor(properties?: onnx.ITensorShapeProto);
        public dim: onnx.TensorShapeProto.IDimension[];
        public static encode(message: onnx.ITensorShapeProto, writer?: $protobuf.Writer): $protobuf.Writer;
        public static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): onnx.TensorShapeProto;
        public static getTypeUrl(typeUrlPrefix?: string): string;
    }

    namespace TensorShapeProto {

        interface IDimension {
            dimValue?: (number|Long|null);
            dimParam?: (string|null);
            denotation?: (string|null);
        }

        class Dimension implements IDimension {
            constructor(properties?: onnx.TensorShapeProto.IDimension);
            public dimValue?: (number|Long|null);
            public dimParam?: (string|null);
            public denotation: string;
            public value?: ("dimValue"|"dimParam");
            public static encode(message: onnx.TensorShapeProto.IDimension, writer?: $protobuf.Writer): $protobuf.Writer;
            public static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): onnx.TensorShapeProto.Dimension;
            public static getTypeUrl(typeUrlPrefix?: string): string;
        }
    }

    interface ITypeProto {
        tensorType?: (onnx.TypeProto.ITensor|null);
        denotation?: (string|null);
    }

    class TypeProto implements ITypeProto {
        constructor(properties?: onnx.ITypeProto);
        public tensorType?: (onnx.TypeProto.ITensor|null);
        public denotation: string;
        public value?: "tensorType";
        public static encode(message: onnx.ITypeProto, writer?: $protobuf.Writer): $protobuf.Writer;
        public static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): onnx.TypeProto;
        public static getTypeUrl(typeUrlPrefix?: string): string;
    }

    namespace TypeProto {

        interface ITensor {
            elemType?: (number|null);
            shape?: (onnx.ITensorShapeProto|null);
        }

        class Tensor implements ITensor {
            constructor(properties?: onnx.TypeProto.ITensor);
            public elemType: number;
            public shape?: (onnx.ITensorShapeProto|null);
            public static encode(message: onnx.TypeProto.ITensor, writer?: $protobuf.Writer): $protobuf.Writer;
            public static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): onnx.TypeProto.Tensor;
            public static getTypeUrl(typeUrlPrefix?: string): string;
        }
    }

    interface IOperatorSetIdProto {
        domain?: (string|null);
        version?: (number|Long|null);
    }

    class OperatorSetIdProto implements IOperatorSetIdProto {
        constructor(properties?: onnx.IOperatorSetIdProto);
        public domain: string;
        public version: (number|Long);
        public static encode(message: onnx.IOperatorSetIdProto, writer?: $protobuf.Writer): $protobuf.Writer;
        public static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): onnx.OperatorSetIdProto;
        public static getTypeUrl(typeUrlPrefix?: string): string;
    }
}
