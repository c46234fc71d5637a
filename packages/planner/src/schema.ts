/**
 * The host profile JSON Schema (draft 2020-12) as a module, so that the planner needs no file system
 * (it runs in a browser too). `schema/host-profile.schema.json` is the same object for other tools;
 * a test keeps the two equal.
 */
export const hostProfileSchema: Readonly<Record<string, unknown>> = {
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://github.com/ioasid/ioasid/packages/planner/schema/host-profile.schema.json",
  "title": "ioasid host profile",
  "description": "A machine described by its IOMMU units (vendor + raw registers) and the PCI devices behind them. Vendor registers are checked by the vendor plugin, not by this schema. Keys starting with x- are free for extensions.",
  "type": "object",
  "required": [
    "name",
    "units"
  ],
  "properties": {
    "$schema": {
      "type": "string"
    },
    "name": {
      "type": "string",
      "minLength": 1,
      "description": "a non-empty name for the host"
    },
    "description": {
      "type": "string"
    },
    "units": {
      "type": "array",
      "description": "the IOMMU units of the host",
      "items": {
        "$ref": "#/$defs/unit"
      }
    },
    "devices": {
      "type": "array",
      "description": "the PCI devices behind the units",
      "items": {
        "$ref": "#/$defs/device"
      }
    }
  },
  "patternProperties": {
    "^x-": true
  },
  "additionalProperties": false,
  "$defs": {
    "number": {
      "type": [
        "string",
        "integer"
      ],
      "minimum": 0,
      "pattern": "^(0[xX][0-9a-fA-F]+|[0-9]+)$",
      "description": "a hex string such as \"0xfee00000\", a decimal string, or a non-negative integer"
    },
    "unit": {
      "type": "object",
      "required": [
        "id",
        "vendor",
        "registers"
      ],
      "properties": {
        "id": {
          "type": "string",
          "pattern": "^[A-Za-z0-9_.:@-]+$",
          "description": "the kernel's name of the unit, e.g. \"dmar0\" or \"smmu0\" (letters, digits and _.:@-)"
        },
        "vendor": {
          "type": "string",
          "pattern": "^[a-z0-9][a-z0-9-]*$",
          "description": "a vendor plugin id such as \"vtd\", \"smmuv3\", \"amd-vi\" or \"virtio-iommu\""
        },
        "registers": {
          "type": "object",
          "description": "the raw registers as the vendor expects them (VT-d {ver, cap, ecap}; SMMUv3 {idr: [6 values], iidr, aidr}; ...)"
        },
        "description": {
          "type": "string"
        },
        "regBase": {
          "$ref": "#/$defs/number"
        },
        "base": {
          "$ref": "#/$defs/number"
        }
      },
      "patternProperties": {
        "^x-": true
      },
      "additionalProperties": false
    },
    "region": {
      "type": "object",
      "required": [
        "start",
        "last",
        "type"
      ],
      "properties": {
        "start": {
          "$ref": "#/$defs/number"
        },
        "last": {
          "$ref": "#/$defs/number",
          "description": "the inclusive last address"
        },
        "type": {
          "enum": [
            "msi",
            "direct",
            "direct-relaxable",
            "reserved"
          ]
        }
      },
      "additionalProperties": false
    },
    "device": {
      "type": "object",
      "required": [
        "bdf",
        "unit"
      ],
      "properties": {
        "bdf": {
          "type": "string",
          "pattern": "^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-1][0-9a-fA-F]\\.[0-7]$",
          "description": "a PCI address segment:bus:device.function such as \"0000:00:02.0\""
        },
        "unit": {
          "type": "string",
          "description": "the id of the unit the device sits behind"
        },
        "group": {
          "type": "integer",
          "minimum": 0
        },
        "ats": {
          "type": "boolean"
        },
        "pri": {
          "type": "boolean"
        },
        "pasidBits": {
          "type": "integer",
          "minimum": 0,
          "maximum": 20,
          "description": "the PASID width in bits, 0 to 20"
        },
        "pasidExec": {
          "type": "boolean"
        },
        "pasidPriv": {
          "type": "boolean"
        },
        "streamId": {
          "type": "integer",
          "minimum": 0,
          "maximum": 4294967295
        },
        "noSnoop": {
          "type": "boolean"
        },
        "vf": {
          "type": "boolean"
        },
        "stall": {
          "type": "boolean"
        },
        "reservedRegions": {
          "type": "array",
          "items": {
            "$ref": "#/$defs/region"
          }
        },
        "description": {
          "type": "string"
        }
      },
      "patternProperties": {
        "^x-": true
      },
      "additionalProperties": false
    }
  }
};
