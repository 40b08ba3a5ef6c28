#!/usr/bin/env bash
# The B2 fault and bad-input campaign: runs the terraseg executable on hostile inputs, misuse,
# signals, kills, stale data and file-system traps, and classifies each case:
#   clean  — refused with a message naming the file or key and exit ≠ 0, or a correct result
#   crash  — a crash, a backtrace, a hang (time limit) or an unexpected signal exit
#   wrong  — exit 0 on a refused input, a signal ignored, a stale or wrong result, a message
#            that names neither the file nor the key
#   lost   — a final output missing or damaged, or a file outside the output overwritten
# Usage: Benchmarks/faults/campaign.sh [BIN] (default: the release build). Needs the sample data
# (scripts/fetch-sample.sh) and GDAL's tools. Prints one line per case and the table per category;
# the full log is in $W/results.tsv.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export B=${1:-$(swift build -c release --show-bin-path)/terraseg}
export W=${W:-$(mktemp -d /tmp/terraseg-faults.XXXXXX)}
mkdir -p "$W"
LIMIT=${LIMIT:-180}
MEMORY_KB=${MEMORY_KB:-8000000}
RESULTS=$W/results.tsv
[ -n "${APPEND:-}" ] || : > "$RESULTS"
NC=$ROOT/samples/nc-landsat7
[ -f "$NC/strata.tif" ] || { echo "run scripts/fetch-sample.sh first" >&2; exit 2; }

BACKTRACE='Fatal error|Stack dump|Segmentation fault|Illegal instruction|Current stack trace|Aborted|#[0-9]+ 0x|Please submit a bug report'

# ---- fixtures -------------------------------------------------------------------------------
setup() {
    cd "$W"
    gdalbuildvrt -q -separate stack.vrt "$NC"/lsat7_2000_{10,20,30,40,50,70}.tif
    gdal_translate -q -ot Float32 -co COMPRESS=DEFLATE stack.vrt scene.tif
    cp "$NC/strata.tif" labels.tif
    big_vrt
    cat > base.yaml <<EOF
name: camp
output: $W/run
data:
  scenes: [{image: [$W/scene.tif], labels: $W/labels.tif}]
  classes: [{value: 1, name: developed}, {value: 2, name: agriculture}, {value: 3, name: herbaceous},
            {value: 4, name: shrubland}, {value: 5, name: forest}, {value: 6, name: water}, {value: 7, name: sediment}]
  ignore: [0]
tiling: {patch: 32, stride: 32, split: {method: rows, train_fraction: 0.6}}
model: {kind: unet, widths: [8, 16]}
training: {epochs: 3, batch_size: 8, seed: 7}
prediction: {tile: 128}
EOF
    "$B" run base.yaml > setup.log 2>&1 || { cat setup.log; echo "setup failed" >&2; exit 2; }
    cp -r run/model model
    "$B" train --image scene.tif --labels labels.tif --classes 1=a,2=b,3=c,4=d,5=e,6=f,7=g --ignore 0 \
        --widths 8,16 --patch-size 32 --epochs 30 --batch-size 8 --seed 3 --output ref-model > ref.log 2>&1 \
        || { cat ref.log; exit 2; }
    cd "$ROOT"
}

# A 6000×6000 scene at the sample's pixel size (the sample resampled, its corner kept), so that
# prediction takes a while (one thread: ~20 s; 3000² ended before the 5 s kill once the blocks
# followed the ISA) and the model/scene check accepts it.
big_vrt() {
    local ullr
    ullr=$(gdalinfo -json scene.tif | python3 -c "import json,sys; g=json.load(sys.stdin)['geoTransform']; print(g[0], g[3], g[0] + 6000 * g[1], g[3] + 6000 * g[5])")
    gdal_translate -q -of VRT -outsize 6000 6000 -r bilinear -a_ullr $ullr scene.tif big.vrt
}

# ---- case runners ---------------------------------------------------------------------------
record() { # category name verdict note
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$RESULTS"
    printf '%-10s %-44s %-6s %s\n' "$1" "$2" "$3" "$4"
}

# Runs "$@" (a bash command) in $W/case under the time and memory limits; sets RC, ERR.
limited() {
    rm -rf "$W/case"; mkdir -p "$W/case"
    (cd "$W/case" && ulimit -v "$MEMORY_KB" && exec timeout -s KILL "$LIMIT" bash -c "$1") > "$W/out.txt" 2> "$W/err.txt"
    RC=$?
    ERR=$(cat "$W/out.txt" "$W/err.txt")
}

crashed() { [ "$RC" -eq 137 ] || [ "$RC" -gt 128 -a "$RC" -ne 130 -a "$RC" -ne 143 ] || grep -Eq "$BACKTRACE" <<< "$ERR"; }

# refuse CAT NAME NEEDLE CMD: the command must fail with a message containing NEEDLE.
refuse() {
    limited "$4"
    if crashed; then record "$1" "$2" crash "rc=$RC $(tail -c 160 <<< "$ERR" | tr '\n' ' ')"
    elif [ "$RC" -eq 0 ]; then record "$1" "$2" wrong "accepted (exit 0)"
    elif grep -Eqi -- "$3" <<< "$ERR"; then record "$1" "$2" clean "$(grep -m1 -i 'error' <<< "$ERR" | cut -c1-110)"
    else record "$1" "$2" wrong "message does not name '$3': $(head -c 140 <<< "$ERR" | tr '\n' ' ')"
    fi
}

# accept CAT NAME CMD CHECK: the command must succeed and CHECK (bash, in $W/case) must hold.
accept() {
    limited "$3"
    if crashed; then record "$1" "$2" crash "rc=$RC $(tail -c 160 <<< "$ERR" | tr '\n' ' ')"
    elif [ "$RC" -ne 0 ]; then record "$1" "$2" wrong "failed: $(grep -m1 -i error <<< "$ERR" | cut -c1-120)"
    elif (cd "$W/case" && bash -c "$4") > /dev/null 2>&1; then record "$1" "$2" clean "ok"
    else record "$1" "$2" wrong "check failed: $4"
    fi
}

# interrupt CAT NAME SIGNAL DELAY CMD CHECK: sends SIGNAL after DELAY s; the command must exit
# 130/143 (or 0 if it had finished), CHECK must hold (no damaged final file; a rerun completes).
interrupt() {
    rm -rf "$W/case"; mkdir -p "$W/case"; touch "$W/pid-mark"
    # a session of its own (its id is the shell's pid), so the signal reaches only terraseg
    ( cd "$W/case" && exec setsid bash -c "$5" > "$W/out.txt" 2> "$W/err.txt" ) &
    local pid=$!
    sleep "$4"
    pkill -"$3" -s "$pid" -x "$(basename "$B")"
    local t=0; while kill -0 "$pid" 2>/dev/null && [ $t -lt "$LIMIT" ]; do sleep 1; t=$((t + 1)); done
    pkill -KILL -s "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    ERR=$(cat "$W/out.txt" "$W/err.txt" | tr -d '\0')
    RC=$(grep -Eo 'EXIT=[0-9]+' <<< "$ERR" | tail -1 | cut -d= -f2); RC=${RC:-none}
    local expected=130; [ "$3" = TERM ] && expected=143; [ "$3" = KILL ] && expected=137
    if grep -Eq "$BACKTRACE" <<< "$ERR" || [ $t -ge "$LIMIT" ]; then record "$1" "$2" crash "rc=$RC after $3 (hang or backtrace)"
    elif ! (cd "$W/case" && bash -c "$6" || { find . -maxdepth 2 -newer "$W/pid-mark" | head -8; exit 1; }) > "$W/check.txt" 2>&1; then
        record "$1" "$2" lost "check failed: $(tail -c 200 "$W/check.txt" | tr '\n' ' ')"
    elif [ "$RC" != "$expected" ]; then record "$1" "$2" wrong "exit $RC after SIG$3 (expected $expected)"
    else record "$1" "$2" clean "exit $RC"
    fi
}

# ---- cases ----------------------------------------------------------------------------------
cli_cases() {
    local P="$B predict --model $W/model --input $W/scene.tif --output out"
    local T="$B train --image $W/scene.tif --labels $W/labels.tif --classes 1=a,2=b,3=c,4=d,5=e,6=f,7=g --ignore 0 --widths 8,16 --patch-size 32 --output m"
    refuse cli no-subcommand-args "model" "$B predict"
    refuse cli unknown-subcommand "frobnicate" "$B frobnicate"
    refuse cli unknown-flag "--frob" "$P --frob"
    refuse cli model-missing "nomodel" "$B predict --model nomodel --input $W/scene.tif --output out"
    refuse cli input-missing "nothere.tif" "$B predict --model $W/model --input nothere.tif --output out"
    refuse cli input-glob-empty "no file matches" "$B predict --model $W/model --input '$W/*.nothing' --output out"
    for v in 0 -5 abc 100000 1e9; do refuse cli "tile=$v" "tile" "$P --tile $v"; done
    for v in -1 99999 x; do refuse cli "margin=$v" "margin" "$P --margin $v"; done
    for v in 0 -2 100000; do refuse cli "predict-batch=$v" "batch" "$P --batch-size $v"; done
    refuse cli blend-unknown "blend" "$P --blend foo"
    refuse cli compression-unknown "compression" "$P --compression foo"
    refuse cli output-is-file "out" "touch out; $P"
    for v in 0 -1 x 10000000; do refuse cli "epochs=$v" "epochs" "$T --epochs $v"; done
    for v in -1 nan inf 0; do refuse cli "lr=$v" "lr" "$T --lr $v"; done
    refuse cli loss-negative-weight "loss" "$T --loss 'dice*-1'"
    refuse cli loss-unknown "loss" "$T --loss frob"
    refuse cli classes-empty "classes" "$T --classes ''"
    refuse cli classes-duplicate "classes" "$B train --image $W/scene.tif --labels $W/labels.tif --classes 1=a,1=b --output m"
    refuse cli classes-300 "classes" "$B train --image $W/scene.tif --labels $W/labels.tif --classes 300=a,2=b --output m"
    refuse cli classes-bad-colour "colo" "$B train --image $W/scene.tif --labels $W/labels.tif --classes 1=a:#zz,2=b --output m"
    for v in 4,8 100000 '' -8,16 0; do refuse cli "widths=$v" "widths" "$T --widths '$v'"; done
    for v in 0 7 -32 100000; do refuse cli "patch=$v" "patch" "$T --patch-size $v"; done
    for v in -8 0; do refuse cli "stride=$v" "stride" "$T --stride $v"; done
    for v in blocks:0 rows:1.5 rows:-1 frob; do refuse cli "split=$v" "split" "$T --split $v"; done
    for v in 0 99 x; do refuse cli "bands=$v" "band" "$T --bands $v"; done
    for v in 0 -3 100000; do refuse cli "train-batch=$v" "batch" "$T --batch-size $v"; done
    refuse cli max-invalid-2 "max-invalid" "$T --max-invalid 2"
    refuse cli image-without-labels "labels" "$B train --image $W/scene.tif --classes 1=a,2=b --output m"
    refuse cli labels-twice "labels" "$B train --image $W/scene.tif --labels $W/labels.tif --labels $W/labels.tif --classes 1=a,2=b --output m"
    refuse cli evaluate-missing "nomap.tif" "$B evaluate --prediction nomap.tif --labels $W/labels.tif"
    refuse cli evaluate-other-grid "grid" "gdal_translate -q -srcwin 0 0 100 100 $W/labels.tif small.tif; $B evaluate --prediction small.tif --labels $W/labels.tif"
    refuse cli quicklook-size-0 "max-size" "$B quicklook --max-size 0 $W/run/maps/scene_map.tif"
    refuse cli info-missing "nothere.tif" "$B info nothere.tif"
    refuse cli info-directory "$W" "$B info $W"
    refuse cli run-missing "nothere.yaml" "$B run nothere.yaml"
    refuse cli env-threads "TERRASEG_THREADS" "TERRASEG_THREADS=0 $P"
    refuse cli env-winograd "TERRASEG_WINOGRAD" "TERRASEG_WINOGRAD=maybe $P"
}

yaml_case() { # name needle body
    printf '%s\n' "$3" > "$W/y-$1.yaml"
    refuse yaml "$1" "$2" "$B run --check $W/y-$1.yaml"
}

yaml_cases() {
    local head="name: y
output: out"
    local data="data:
  scenes: [{image: [$W/scene.tif], labels: $W/labels.tif}]
  classes: [{value: 1, name: a}, {value: 2, name: b}]"
    yaml_case empty "y-empty" ""
    yaml_case junk "y-junk" "$(head -c 300 /dev/urandom | tr -d '\0')"
    yaml_case not-a-map "y-not-a-map" "- 1
- 2"
    yaml_case no-data "data" "$head"
    yaml_case unknown-key "frob" "$head
$data
frob: 1"
    yaml_case wrong-type "epochs" "$head
$data
training: {epochs: many}"
    yaml_case deep-nesting "y-deep-nesting" "$head
$data
model: $(printf '[%.0s' $(seq 1 5000))$(printf ']%.0s' $(seq 1 5000))"
    yaml_case billion-laughs "y-billion-laughs" "a: &a [x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: [*g, *g, *g, *g, *g, *g, *g, *g, *g]
$head
$data"
    yaml_case huge-number "epochs" "$head
$data
training: {epochs: 1e400}"
    yaml_case duplicate-key "training" "$head
$data
training: {epochs: 2}
training: {epochs: 3}"
    yaml_case name-traversal "name" "name: ../../escape
output: out
$data"
    yaml_case name-slash "name" "name: a/b
$data"
    yaml_case classes-empty "classes" "$head
data:
  scenes: [{image: [$W/scene.tif], labels: $W/labels.tif}]
  classes: []"
    yaml_case scene-missing "missing.tif" "$head
data:
  scenes: [{image: [missing.tif], labels: $W/labels.tif}]
  classes: [{value: 1, name: a}, {value: 2, name: b}]"
    yaml_case widths-huge "widths" "$head
$data
model: {widths: [100000, 100000]}"
    yaml_case tile-huge "tile" "$head
$data
prediction: {tile: 100000}"
    yaml_case margin-huge "margin" "$head
$data
prediction: {margin: 99999}"
    yaml_case batch-patch-huge "memory" "$head
$data
tiling: {patch: 4096}
training: {batch_size: 4096}"
    yaml_case epochs-zero "epochs" "$head
$data
training: {epochs: 0}"
    yaml_case lr-negative "learning_rate" "$head
$data
optimizer: {learning_rate: -0.1}"
    yaml_case loss-weight-negative "weight" "$head
$data
loss: {terms: [{kind: dice, weight: -1}]}"
    yaml_case output-is-file "out" "name: y
output: $W/scene.tif
$data"
    yaml_case tab-indent "y-tab-indent" "$head
data:
	scenes: []"
    yaml_case split-fraction "train_fraction" "$head
$data
tiling: {split: {method: rows, train_fraction: 1.5}}"
}

raster_cases() {
    local P="$B predict --model $W/model --output out --input"
    local T="$B train --classes 1=a,2=b,3=c,4=d,5=e,6=f,7=g --ignore 0 --widths 8,16 --patch-size 32 --epochs 1 --output m"
    local mk
    mk[0]="head -c 3000 $W/scene.tif > bad.tif"                                # truncated
    mk[1]=": > bad.tif"                                                       # empty
    mk[2]="echo 'not a raster' > bad.tif"                                     # text
    mk[3]="head -c 20000 /dev/urandom > bad.tif"                              # random bytes
    mk[4]="printf '<VRTDataset rasterXSize=\"100000\" rasterYSize=\"100000\"><VRTRasterBand dataType=\"Byte\" band=\"1\"><SimpleSource><SourceFilename>missing.tif</SourceFilename></SimpleSource></VRTRasterBand></VRTDataset>' > bad.vrt"
    mk[5]="printf '<VRTDataset rasterXSize=\"10\" rasterYSize=\"10\"></VRTDataset>' > bad.vrt"   # no bands
    mk[6]="gdal_translate -q -ot CFloat32 $W/scene.tif bad.tif"              # complex
    mk[7]="printf '<VRTDataset rasterXSize=\"0\" rasterYSize=\"10\"><VRTRasterBand dataType=\"Byte\" band=\"1\"/></VRTDataset>' > bad.vrt"
    mk[8]="mkfifo bad.tif"                                                   # named pipe
    mk[9]="mkdir bad.tif"                                                    # directory
    mk[10]="ln -s /dev/zero bad.tif"                                         # device
    mk[11]="gdal_translate -q -b 1 -b 2 -b 3 $W/scene.tif bad.tif"           # wrong band count for the model
    mk[12]="printf '<VRTDataset rasterXSize=\"2000000000\" rasterYSize=\"2000000000\"><VRTRasterBand dataType=\"Float64\" band=\"1\"/></VRTDataset>' > bad.vrt"
    local names=(truncated empty text random huge-vrt no-bands complex zero-width fifo directory device three-bands giant-vrt)
    for i in "${!names[@]}"; do
        local n=${names[$i]} f=bad.tif; [[ ${mk[$i]} == *bad.vrt* ]] && f=bad.vrt
        local needle="$f|missing.tif"
        # info describes any raster GDAL opens (a complex band, a VRT whose source is missing)
        case $n in complex|huge-vrt|giant-vrt|three-bands) ;; *) refuse raster "info-$n" "$needle" "${mk[$i]}; $B info $f" ;; esac
        refuse raster "predict-$n" "$needle|band" "${mk[$i]}; $P $f; r=\$?; test ! -e out/bad_map.tif || r=99; exit \$r"
        [ "$n" = three-bands ] || refuse raster "train-$n" "$needle|labels" "${mk[$i]}; $T --image $f --labels $W/labels.tif"
    done
    # labels on a part of the grid are read onto it with a notice (B3); labels elsewhere are refused
    accept raster labels-other-size "gdal_translate -q -srcwin 0 0 200 200 $W/labels.tif l.tif; $T --image $W/scene.tif --labels l.tif 2> log.txt" \
        "grep -q 'labels read onto the image grid' log.txt && test -f m/model.json"
    refuse raster labels-elsewhere "does not overlap" "gdal_translate -q -a_ullr 0 200 200 0 -a_srs EPSG:32617 -srcwin 0 0 200 200 $W/labels.tif l.tif; $T --image $W/scene.tif --labels l.tif"
    refuse raster labels-text "l.tif" "echo x > l.tif; $T --image $W/scene.tif --labels l.tif"
    refuse raster labels-float "l.tif" "gdal_translate -q -ot Float32 -scale 0 7 0 0.7 $W/labels.tif l.tif; $T --image $W/scene.tif --labels l.tif"
    refuse raster labels-no-classes "class" "gdal_calc.py --quiet -A $W/labels.tif --outfile=l.tif --calc='A*0+9' --type=Byte; $T --image $W/scene.tif --labels l.tif"
    accept raster predict-all-nodata "gdal_calc.py --quiet -A $W/scene.tif --allBands=A --outfile=z.tif --calc='A*0' --NoDataValue=0; $P z.tif" \
        "test -f out/z_map.tif && gdalinfo -stats out/z_map.tif | grep -q 'nodata\|NoData'"
}

bundle_cases() {
    local P="$B predict --input $W/scene.tif --output out --model"
    refuse bundle no-model-json "model.json" "cp -r $W/model b; rm b/model.json; $P b"
    refuse bundle no-weights "safetensors" "cp -r $W/model b; rm b/model.safetensors; $P b"
    refuse bundle model-json-junk "model.json" "cp -r $W/model b; echo '{x' > b/model.json; $P b"
    refuse bundle model-json-empty-object "model.json" "cp -r $W/model b; echo '{}' > b/model.json; $P b"
    refuse bundle weights-truncated "safetensors" "cp -r $W/model b; head -c 500 $W/model/model.safetensors > b/model.safetensors; $P b"
    refuse bundle weights-empty "safetensors" "cp -r $W/model b; : > b/model.safetensors; $P b"
    refuse bundle weights-header-huge "safetensors" "cp -r $W/model b; printf '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x7f{}' > b/model.safetensors; $P b"
    refuse bundle weights-random "safetensors" "cp -r $W/model b; head -c 4000 /dev/urandom > b/model.safetensors; $P b"
    refuse bundle widths-empty "widths" "cp -r $W/model b; python3 -c \"import json;p='b/model.json';d=json.load(open(p));d['architecture']['unet']['widths']=[];json.dump(d,open(p,'w'))\"; $P b"
    refuse bundle widths-negative "widths" "cp -r $W/model b; python3 -c \"import json;p='b/model.json';d=json.load(open(p));d['architecture']['unet']['widths']=[-8,16];json.dump(d,open(p,'w'))\"; $P b"
    refuse bundle normalization-short "normali" "cp -r $W/model b; python3 -c \"import json;p='b/model.json';d=json.load(open(p));n=d['normalization'];[n.__setitem__(k, v[:2]) for k, v in list(n.items()) if isinstance(v, list)];json.dump(d,open(p,'w'))\"; $P b"
    refuse bundle classes-negative "classes" "cp -r $W/model b; python3 -c \"import json;p='b/model.json';d=json.load(open(p));d['architecture']['unet']['classes']=-3;json.dump(d,open(p,'w'))\"; $P b"
    refuse bundle weights-nan "NaN|finite" "cp -r $W/model b; python3 -c \"
import json,struct
p='b/model.safetensors';b=bytearray(open(p,'rb').read());n=struct.unpack('<Q',b[:8])[0];h=json.loads(b[8:8+n])
k=sorted(x for x in h if x!='__metadata__')[0];o=8+n+h[k]['data_offsets'][0];b[o:o+4]=struct.pack('<f',float('nan'));open(p,'wb').write(b)\"; $P b"
    refuse bundle model-is-file "m" "echo x > m; $P m"
    if [ -d "$ROOT/Tests/Fixtures/corpus/bundles" ]; then
        for d in "$ROOT"/Tests/Fixtures/corpus/bundles/*/; do
            local n; n=$(basename "$d")
            refuse bundle "corpus-$n" "$n" "$P $d"
        done
    fi
}

signal_cases() {
    local T="$B train --image $W/scene.tif --labels $W/labels.tif --classes 1=a,2=b,3=c,4=d,5=e,6=f,7=g --ignore 0 --widths 8,16 --patch-size 32 --epochs 30 --batch-size 8 --output m"
    local rerun_ok="test ! -e m/model.json || test -f m/model.safetensors"
    for s in INT TERM; do
        interrupt signal "train-SIG$s" $s 4 "$T; echo EXIT=\$?" "$rerun_ok; test -f m.training/last.ckpt"
        interrupt signal "predict-SIG$s" $s 3 "$B predict --model $W/model --input $W/big.vrt --output out --tile 256; echo EXIT=\$?" \
            "test ! -e out/big_map.tif; ls -A out | grep -v '^\\.' | wc -l | grep -qx 0"
        # run: training up to date; only prediction reruns (a prediction setting changed)
        interrupt signal "run-predict-SIG$s" $s 3 "cp -r $W/run run; sed -e 's#$W/run#run#' -e 's#^data:#prediction: {tile: 256, scenes: [[$W/big.vrt]]}\\ndata:#' $W/base.yaml | grep -v '^prediction: {tile: 128}' > p.yaml; $B run p.yaml; echo EXIT=\$?" \
            "test -f run/model/model.json; test ! -e run/maps/big_map.tif"
        interrupt signal "run-train-SIG$s" $s 5 "sed -e 's#$W/run#run#' -e 's#epochs: 3#epochs: 40#' $W/base.yaml > p.yaml; $B run p.yaml; echo EXIT=\$?" \
            "test ! -e run/model || test -f run/model/model.safetensors; test -f run/model.training/last.ckpt"
    done
}

kill_cases() {
    local T="$B train --image $W/scene.tif --labels $W/labels.tif --classes 1=a,2=b,3=c,4=d,5=e,6=f,7=g --ignore 0 --widths 8,16 --patch-size 32 --epochs 30 --batch-size 8 --seed 3 --output m"
    # resume after kill -9 must equal the uninterrupted run bit for bit (30 epochs: ~16 s on one
    # thread, so that the last kill comes before the end)
    for d in 1 3 5 7; do
        interrupt kill "train-kill9-at-${d}s" KILL $d "$T; echo EXIT=\$?" \
            "$T --resume > resume.log 2>&1; cmp m/model.safetensors $W/ref-model/model.safetensors"
    done
    for d in 2 5; do
        interrupt kill "predict-kill9-at-${d}s" KILL $d "$B predict --model $W/model --input $W/big.vrt --output out --tile 256; echo EXIT=\$?" \
            "test ! -e out/big_map.tif; $B predict --model $W/model --input $W/scene.tif --output out > /dev/null 2>&1; gdalinfo out/scene_map.tif > /dev/null"
    done
    interrupt kill "bundle-replace-kill9" KILL 4 "cp -r $W/model m; $T --epochs 30; echo EXIT=\$?" "test -f m/model.json && test -f m/model.safetensors"
}

# A finished run built in $W/case (stamps hold absolute paths), copied back before each case.
stale_base() {
    rm -rf "$W/case" "$W/stale-base"; mkdir -p "$W/case"
    (cd "$W/case" && cp -p "$W/labels.tif" "$W/scene.tif" . &&
        sed -e "s#$W/run#run#" -e "s#$W/labels.tif#labels.tif#" -e "s#$W/scene.tif#scene.tif#" "$W/base.yaml" > p.yaml &&
        "$B" run p.yaml > /dev/null 2>&1) || echo "stale base run failed" >&2
    cp -a "$W/case" "$W/stale-base"
}

stale_cases() {
    stale_base
    local setup="cp -a $W/stale-base/. ."
    local trained="grep -q '^train: camp' log.txt"
    accept stale unchanged-skips "$setup; $B run p.yaml > log.txt 2>&1" "grep -q 'train: up to date' log.txt"
    accept stale labels-swapped-in-place "$setup; cp -p labels.tif orig.tif; /usr/bin/python3 -c \"from osgeo import gdal; d = gdal.Open('labels.tif', 1); b = d.GetRasterBand(1); a = b.ReadAsArray(); c = a.copy(); c[a == 5] = 6; c[a == 6] = 5; b.WriteArray(c); d = None\"; touch -r orig.tif labels.tif; cmp -s labels.tif orig.tif && exit 9; test \$(stat -c %s labels.tif) = \$(stat -c %s orig.tif) || exit 8; $B run p.yaml > log.txt 2>&1" "$trained"
    accept stale scene-changed "$setup; gdal_calc.py --quiet -A $W/scene.tif --allBands=A --outfile=x.tif --calc='A+1' --type=Float32; cat x.tif > scene.tif; $B run p.yaml > log.txt 2>&1" "$trained"
    accept stale setting-changed "$setup; sed -i 's/epochs: 3/epochs: 2/' p.yaml; $B run p.yaml > log.txt 2>&1" "$trained"
    accept stale force-retrains "$setup; $B run --force p.yaml > log.txt 2>&1" "$trained"
    accept stale prediction-setting "$setup; sed -i 's/tile: 128/tile: 64/' p.yaml; $B run p.yaml > log.txt 2>&1" "grep -q 'train: up to date' log.txt && grep -q '^predict: ' log.txt"
    accept stale interrupted-then-setting-changed "$setup; rm -rf run; sed -i 's/epochs: 3/epochs: 60/' p.yaml; (timeout -s INT 6 $B run p.yaml > /dev/null 2>&1; true); sed -i 's/epochs: 60/epochs: 2/' p.yaml; $B run p.yaml > log.txt 2>&1" "$trained"
    refuse stale train-would-delete-checkpoint "resume" "$B train --image $W/scene.tif --labels $W/labels.tif --classes 1=a,2=b,3=c,4=d,5=e,6=f,7=g --ignore 0 --widths 8,16 --patch-size 32 --epochs 30 --output m > /dev/null 2>&1 & sleep 5; kill -TERM %1; wait; $B train --image $W/scene.tif --labels $W/labels.tif --classes 1=a,2=b,3=c,4=d,5=e,6=f,7=g --ignore 0 --widths 8,16 --patch-size 32 --epochs 30 --output m"
    # wall_seconds must count both sessions: more than the resumed session alone
    local TW="$B train --image $W/scene.tif --labels $W/labels.tif --classes 1=a,2=b,3=c,4=d,5=e,6=f,7=g --ignore 0 --widths 8,16 --patch-size 32 --epochs 30 --output m"
    accept stale wall-seconds-after-resume "$TW > /dev/null 2>&1 & sleep 4; kill -TERM %1; wait; s=\$(date +%s.%N); $TW --resume; e=\$(date +%s.%N); echo \$s \$e > times.txt" \
        "w=\$(grep -Eo '\"wall_seconds\" *: *[0-9.]+' m/model.json | grep -Eo '[0-9.]+\$'); read s e < times.txt; awk -v w=\$w -v s=\$s -v e=\$e 'BEGIN { exit !(w > e - s + 0.5) }'"
}

fs_cases() {
    local P="$B predict --model $W/model --input $W/scene.tif --output out"
    accept fs symlink-at-final-map "mkdir out; echo victim > victim.txt; ln -s \$PWD/victim.txt out/scene_map.tif; $P --overwrite" "grep -qx victim victim.txt && test ! -L out/scene_map.tif"
    accept fs symlink-at-quicklook "echo victim > victim.txt; cp $W/run/maps/scene_map.tif map.tif; ln -s \$PWD/victim.txt map.png; $B quicklook map.tif" "grep -qx victim victim.txt"
    accept fs symlink-output-dir "mkdir real; ln -s real out; $P" "test -f real/scene_map.tif"
    refuse fs output-in-file "out" "touch f; $B predict --model $W/model --input $W/scene.tif --output f/out"
    if mount -t tmpfs -o size=600k tmpfs "$W/case" 2>/dev/null; then umount "$W/case"
        refuse fs disk-full-predict "space" "mkdir -p full && mount -t tmpfs -o size=200k tmpfs full && trap 'umount full' EXIT; $B predict --model $W/model --input $W/scene.tif --output full --cog --probabilities --confidence; r=\$?; test ! -e full/scene_map.tif || r=99; exit \$r"
        refuse fs disk-full-train "space" "mkdir -p full && mount -t tmpfs -o size=30k tmpfs full && trap 'umount full' EXIT; $B train --image $W/scene.tif --labels $W/labels.tif --classes 1=a,2=b,3=c,4=d,5=e,6=f,7=g --ignore 0 --widths 8,16 --patch-size 32 --epochs 1 --output full/m; r=\$?; test ! -e full/m/model.json || r=99; exit \$r"
    fi
    accept fs read-only-input-dir "mkdir ro; cp $W/scene.tif ro/; chmod 555 ro; $B predict --model $W/model --input ro/scene.tif --output out; chmod 755 ro" "test -f out/scene_map.tif"
}

name_cases() {
    for n in "with space" "quote'd" 'dq"uote' '<img src=x onerror=alert(1)>' "ünïcødé" "-leading" "semi;colon" 'dollar$HOME'; do
        export N="$n"
        accept names "scene-name:$n" 'cp "$W/scene.tif" "./$N.tif" && "$B" predict --model "$W/model" --input "./$N.tif" --output out' "ls out | grep -q '_map.tif'"
    done
    accept names class-name-html "$B train --image $W/scene.tif --labels $W/labels.tif --classes '1=<b>x</b>,2=a&b,3=c,4=d,5=e,6=f,7=g' --ignore 0 --widths 8,16 --patch-size 32 --epochs 1 --output m" "test -f m/model.json"
}

memory_cases() {
    local P="$B predict --model $W/model --input $W/scene.tif --output out"
    # windows: a stream does not use --tile (and says so)
    refuse memory predict-tile-over-budget "tile" "ulimit -v 3000000; $P --tile 16384 --batch-size 16 --blend centre"
    refuse memory train-batch-over-budget "batch" "ulimit -v 3000000; $B train --image $W/scene.tif --labels $W/labels.tif --classes 1=a,2=b,3=c,4=d,5=e,6=f,7=g --ignore 0 --widths 64,128,256 --patch-size 256 --batch-size 512 --epochs 1 --output m"
    refuse memory run-check-widths "widths" "sed 's/widths: \\[8, 16\\]/widths: [100000, 100000]/' $W/base.yaml > p.yaml; $B run --check p.yaml"
    accept memory predict-small-limit "ulimit -v 2500000; $P" "test -f out/scene_map.tif"
}

[ -f "$W/model/model.json" ] || setup
echo "binary: $B"; echo "work: $W"
for c in ${CATEGORIES:-cli yaml raster bundle signal kill stale fs name memory}; do "${c}_cases"; done

echo
printf '| category | tried | clean | crash | wrong | lost |\n|---|---|---|---|---|---|\n'
awk -F'\t' '{v[$1 FS $2] = $3; cat[$1 FS $2] = $1} END {   # the last result of a case counts
    for (k in v) { t[cat[k]]++; c[cat[k] FS v[k]]++; T++; C[v[k]]++ }
    for (k in t) printf "| %s | %d | %d | %d | %d | %d |\n", k, t[k], c[k FS "clean"], c[k FS "crash"], c[k FS "wrong"], c[k FS "lost"]
    printf "| **all** | %d | %d | %d | %d | %d |\n", T, C["clean"], C["crash"], C["wrong"], C["lost"] }' "$RESULTS" | sort
