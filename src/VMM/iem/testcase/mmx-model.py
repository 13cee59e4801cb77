#!/usr/bin/env python3
# mmx-model.py - an independent model of the MMX/SSE/SSSE3 integer operations on 64-bit
# registers (SDM vol. 2 pseudo-code), printing the g_model[] rows of tstIemMmx.c:
#   python3 mmx-model.py > rows.txt   (fixed seed: the output is always the same)
import random
random.seed(1234)
M=2**64-1
def lanes(v,bits,signed=False):
    n=64//bits; m=(1<<bits)-1; out=[]
    for i in range(n):
        x=(v>>(i*bits))&m
        if signed and x>>(bits-1): x-=(1<<bits)
        out.append(x)
    return out
def pack(ls,bits):
    v=0
    for i,x in enumerate(ls): v|=(x&((1<<bits)-1))<<(i*bits)
    return v
def sat(x,lo,hi): return max(lo,min(hi,x))
def ew(f,bits,signed=False):
    return lambda a,b: pack([f(x,y) for x,y in zip(lanes(a,bits,signed),lanes(b,bits,signed))],bits)
def shl(bits): return lambda a,b: pack([ (x<<b) if b<bits else 0 for x in lanes(a,bits)],bits)
def shr(bits): return lambda a,b: pack([ (x>>b) if b<bits else 0 for x in lanes(a,bits)],bits)
def sar(bits): return lambda a,b: pack([ x>>min(b,bits-1) for x in lanes(a,bits,True)],bits)
def hop(bits,f,signed=False,s=None):
    def g(a,b):
        A=lanes(a,bits,signed); B=lanes(b,bits,signed); r=[]
        for L in (A,B):
            for i in range(0,len(L),2): r.append(f(L[i],L[i+1]))
        return pack(r,bits)
    return g
def sign(bits): return lambda a,b: pack([(-x if y<0 else (0 if y==0 else x)) for x,y in zip(lanes(a,bits,True),lanes(b,bits,True))],bits)
def absl(bits): return lambda a,b: pack([abs(y) for y in lanes(b,bits,True)],bits)
ops = {
 # name: (opcode bytes for "mm0, mm1", fn)
 'PADDB':('0f fc',ew(lambda x,y:x+y,8)), 'PADDW':('0f fd',ew(lambda x,y:x+y,16)), 'PADDD':('0f fe',ew(lambda x,y:x+y,32)), 'PADDQ':('0f d4',lambda a,b:(a+b)&M),
 'PSUBB':('0f f8',ew(lambda x,y:x-y,8)), 'PSUBW':('0f f9',ew(lambda x,y:x-y,16)), 'PSUBD':('0f fa',ew(lambda x,y:x-y,32)), 'PSUBQ':('0f fb',lambda a,b:(a-b)&M),
 'PADDSB':('0f ec',ew(lambda x,y:sat(x+y,-128,127),8,True)), 'PADDSW':('0f ed',ew(lambda x,y:sat(x+y,-32768,32767),16,True)),
 'PADDUSB':('0f dc',ew(lambda x,y:sat(x+y,0,255),8)), 'PADDUSW':('0f dd',ew(lambda x,y:sat(x+y,0,65535),16)),
 'PSUBSB':('0f e8',ew(lambda x,y:sat(x-y,-128,127),8,True)), 'PSUBSW':('0f e9',ew(lambda x,y:sat(x-y,-32768,32767),16,True)),
 'PSUBUSB':('0f d8',ew(lambda x,y:sat(x-y,0,255),8)), 'PSUBUSW':('0f d9',ew(lambda x,y:sat(x-y,0,65535),16)),
 'PMULLW':('0f d5',ew(lambda x,y:x*y,16,True)), 'PMULHW':('0f e5',ew(lambda x,y:(x*y)>>16,16,True)), 'PMULHUW':('0f e4',ew(lambda x,y:(x*y)>>16,16)),
 'PMULUDQ':('0f f4',lambda a,b:(a&0xffffffff)*(b&0xffffffff)),
 'PMADDWD':('0f f5',lambda a,b: pack([lanes(a,16,1)[2*i]*lanes(b,16,1)[2*i]+lanes(a,16,1)[2*i+1]*lanes(b,16,1)[2*i+1] for i in range(2)],32)),
 'PCMPEQB':('0f 74',ew(lambda x,y:0xff if x==y else 0,8)), 'PCMPEQW':('0f 75',ew(lambda x,y:0xffff if x==y else 0,16)), 'PCMPEQD':('0f 76',ew(lambda x,y:0xffffffff if x==y else 0,32)),
 'PCMPGTB':('0f 64',ew(lambda x,y:0xff if x>y else 0,8,True)), 'PCMPGTW':('0f 65',ew(lambda x,y:0xffff if x>y else 0,16,True)), 'PCMPGTD':('0f 66',ew(lambda x,y:0xffffffff if x>y else 0,32,True)),
 'PAND':('0f db',lambda a,b:a&b), 'PANDN':('0f df',lambda a,b:(~a)&b&M), 'POR':('0f eb',lambda a,b:a|b), 'PXOR':('0f ef',lambda a,b:a^b),
 'PACKSSWB':('0f 63',lambda a,b: pack([sat(x,-128,127) for x in lanes(a,16,1)+lanes(b,16,1)],8)),
 'PACKSSDW':('0f 6b',lambda a,b: pack([sat(x,-32768,32767) for x in lanes(a,32,1)+lanes(b,32,1)],16)),
 'PACKUSWB':('0f 67',lambda a,b: pack([sat(x,0,255) for x in lanes(a,16,1)+lanes(b,16,1)],8)),
 'PUNPCKLBW':('0f 60',lambda a,b: pack(sum([[lanes(a,8)[i],lanes(b,8)[i]] for i in range(4)],[]),8)),
 'PUNPCKLWD':('0f 61',lambda a,b: pack(sum([[lanes(a,16)[i],lanes(b,16)[i]] for i in range(2)],[]),16)),
 'PUNPCKLDQ':('0f 62',lambda a,b: pack([lanes(a,32)[0],lanes(b,32)[0]],32)),
 'PUNPCKHBW':('0f 68',lambda a,b: pack(sum([[lanes(a,8)[i+4],lanes(b,8)[i+4]] for i in range(4)],[]),8)),
 'PUNPCKHWD':('0f 69',lambda a,b: pack(sum([[lanes(a,16)[i+2],lanes(b,16)[i+2]] for i in range(2)],[]),16)),
 'PUNPCKHDQ':('0f 6a',lambda a,b: pack([lanes(a,32)[1],lanes(b,32)[1]],32)),
 'PSLLW':('0f f1',None), 'PSLLD':('0f f2',None), 'PSLLQ':('0f f3',None), 'PSRLW':('0f d1',None), 'PSRLD':('0f d2',None), 'PSRLQ':('0f d3',None), 'PSRAW':('0f e1',None), 'PSRAD':('0f e2',None),
 'PAVGB':('0f e0',ew(lambda x,y:(x+y+1)>>1,8)), 'PAVGW':('0f e3',ew(lambda x,y:(x+y+1)>>1,16)),
 'PMINUB':('0f da',ew(min,8)), 'PMAXUB':('0f de',ew(max,8)), 'PMINSW':('0f ea',ew(min,16,True)), 'PMAXSW':('0f ee',ew(max,16,True)),
 'PSADBW':('0f f6',lambda a,b: sum(abs(x-y) for x,y in zip(lanes(a,8),lanes(b,8)))),
 'PSHUFB':('0f 38 00',lambda a,b: pack([0 if y&0x80 else lanes(a,8)[y&7] for y in lanes(b,8)],8)),
 'PHADDW':('0f 38 01',hop(16,lambda x,y:x+y)), 'PHADDD':('0f 38 02',hop(32,lambda x,y:x+y)), 'PHADDSW':('0f 38 03',hop(16,lambda x,y:sat(x+y,-32768,32767),True)),
 'PMADDUBSW':('0f 38 04',lambda a,b: pack([sat(lanes(a,8)[2*i]*lanes(b,8,1)[2*i]+lanes(a,8)[2*i+1]*lanes(b,8,1)[2*i+1],-32768,32767) for i in range(4)],16)),
 'PHSUBW':('0f 38 05',hop(16,lambda x,y:x-y)), 'PHSUBD':('0f 38 06',hop(32,lambda x,y:x-y)), 'PHSUBSW':('0f 38 07',hop(16,lambda x,y:sat(x-y,-32768,32767),True)),
 'PSIGNB':('0f 38 08',sign(8)), 'PSIGNW':('0f 38 09',sign(16)), 'PSIGND':('0f 38 0a',sign(32)),
 'PMULHRSW':('0f 38 0b',ew(lambda x,y:(((x*y)>>14)+1)>>1,16,True)),
 'PABSB':('0f 38 1c',absl(8)), 'PABSW':('0f 38 1d',absl(16)), 'PABSD':('0f 38 1e',absl(32)),
}
shiftfn={'PSLLW':shl(16),'PSLLD':shl(32),'PSLLQ':shl(64),'PSRLW':shr(16),'PSRLD':shr(32),'PSRLQ':shr(64),'PSRAW':sar(16),'PSRAD':sar(32)}
def rnd():
    k=random.random()
    if k<0.2: return random.choice([0,M,0x8000800080008000,0x7fff7fff7fff7fff,0x8080808080808080,0x7f7f7f7f7f7f7f7f,0x80000000,0xffffffff00000000])
    return random.getrandbits(64)
out=[]
for name,(opc,fn) in ops.items():
    for k in range(4):
        a=rnd(); b=rnd()
        if fn is None:
            b = random.choice([0,1,3,7,15,16,31,32,63,64,1<<40]) if k<3 else random.getrandbits(64)
            r = shiftfn[name](a,b if b < 2**64 else 0)
        else:
            r = fn(a,b)
        out.append('    {"%s c1", 0x%016xull, 0x%016xull, 0x%016xull}, /* %s */' % (opc,a,b,r&M,name))
# imm shifts
imm={'PSRLW':('0f 71','d0'),'PSRAW':('0f 71','e0'),'PSLLW':('0f 71','f0'),'PSRLD':('0f 72','d0'),'PSRAD':('0f 72','e0'),'PSLLD':('0f 72','f0'),'PSRLQ':('0f 73','d0'),'PSLLQ':('0f 73','f0')}
for name,(opc,m) in imm.items():
    for c in [1,9,17,33,255]:
        a=rnd(); r=shiftfn[name](a,c)
        out.append('    {"%s %s %02x", 0x%016xull, 0, 0x%016xull}, /* %s imm */' % (opc,m,c,a,r&M,name))
for c in [0,1,5,8,9,15,16,200]:
    a=rnd(); b=rnd(); r=(((a<<64)|b)>>(c*8))&M if c<16 else 0
    out.append('    {"0f 3a 0f c1 %02x", 0x%016xull, 0x%016xull, 0x%016xull}, /* PALIGNR */' % (c,a,b,r))
for c in [0x1b,0xe4,0x00,0xff,0x4e]:
    b=rnd(); r=pack([lanes(b,16)[(c>>(2*i))&3] for i in range(4)],16)
    out.append('    {"0f 70 c1 %02x", 0, 0x%016xull, 0x%016xull}, /* PSHUFW */' % (c,b,r))
print("\n".join(out))
